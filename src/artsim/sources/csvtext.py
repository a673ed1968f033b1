"""Reading CSV text the way spreadsheets write it: any common encoding, and quotes left open.

- `detect_encoding`: UTF-8 (with or without BOM) and UTF-16 (with a BOM, or Latin-range text
  without one) first, then cp1252 (what Excel on Windows writes), then Latin-1, which decodes
  any bytes. A given encoding is checked instead, and a byte it cannot decode is a
  SourceError naming the line.
- `iter_rows`: csv rows with the line each starts on; a row a quote left open swallowed to the
  end of the file (or into a later row) is reported with the line where the quote opened.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from artsim.errors import SourceError

AUTO = "auto"
_BLOCK = 1 << 20
_FALLBACKS = ("cp1252", "latin-1")


@dataclass(frozen=True, slots=True)
class Encoding:
    """The encoding a file is read with, and a note for the user when it was guessed."""

    name: str
    note: str | None = None
    errors: str = "strict"  # "replace" for a UTF-8 file with a few stray bytes


def _first_bad_byte(path: Path, encoding: str) -> tuple[int, int, int] | None:
    """(line, column, byte) of the first byte encoding cannot decode, or None if all decode."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    line = 1
    with path.open("rb") as fh:
        while True:
            block = fh.read(_BLOCK)
            final = not block
            try:
                decoder.decode(block, final=final)
            except UnicodeDecodeError as exc:
                # exc.object is what the decoder held: its pending bytes plus this block
                pending = len(exc.object) - len(block)
                start = max(0, exc.start - pending)
                before = block[:start]
                col = start - (before.rfind(b"\n") + 1) + 1
                bad = exc.object[exc.start] if exc.start < len(exc.object) else 0
                return line + before.count(b"\n"), col, bad
            if final:
                return None
            line += block.count(b"\n")


def _utf8_tally(path: Path) -> tuple[int, int]:
    """(non-ASCII characters that decode as UTF-8, bytes that do not) over the whole file."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    good = stray = 0
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            text = decoder.decode(block)
            bad = text.count("\ufffd")
            stray += bad
            good += len(text) - len(text.encode("ascii", "ignore")) - bad
    text = decoder.decode(b"", final=True)
    stray += text.count("\ufffd")
    return good, stray


def detect_encoding(path: str | Path, encoding: str | None = None) -> Encoding:
    """The encoding to read path with; encoding=None or 'auto' guesses, anything else is checked.

    Raises SourceError for an unknown encoding name, or one that cannot decode the file (the
    message names the line and byte and suggests --encoding)."""
    path = Path(path)
    if encoding and encoding.lower() != AUTO:
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            raise SourceError(
                f"unknown encoding {encoding!r} (try utf-8, cp1252, latin-1 or utf-16)"
            ) from None
        if name == "utf-8":
            name = "utf-8-sig"  # a BOM is never part of the header
        bad = _first_bad_byte(path, name)
        if bad is not None:
            line, col, byte = bad
            raise SourceError(
                f"{path}:{line}: byte 0x{byte:02x} (column {col}) cannot be decoded as "
                f"{encoding}; check the file, or pass --encoding cp1252 (Excel on Windows) "
                "or latin-1"
            )
        return Encoding(name)
    with path.open("rb") as fh:
        head = fh.read(4096)
    bom16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if bom16 and _first_bad_byte(path, "utf-16") is None:
        return Encoding("utf-16")
    # UTF-16 without a BOM: ASCII text with a zero byte after (LE) or before (BE) each char
    for name, zeros in (("utf-16-le", head[1::2]), ("utf-16-be", head[0::2])):
        if len(head) >= 4 and zeros.count(0) == len(zeros) and _first_bad_byte(path, name) is None:
            return Encoding(name, f"{path}: read as {name} (no byte order mark)")
    bad = _first_bad_byte(path, "utf-8-sig")
    if bad is None:
        return Encoding("utf-8-sig")
    line, _col, byte = bad
    good, stray = _utf8_tally(path)
    if good > stray:  # real UTF-8 text with a few bad bytes: cp1252 would garble all of it
        return Encoding(
            "utf-8-sig",
            f"{path}: UTF-8, but {stray} byte(s) are not, the first (0x{byte:02x}) on line "
            f"{line}; they read as U+FFFD. Fix them, or pass --encoding to choose another.",
            errors="replace",
        )
    for name in _FALLBACKS:
        if name == "latin-1" or _first_bad_byte(path, name) is None:
            return Encoding(
                name,
                f"{path}: not UTF-8 (byte 0x{byte:02x} on line {line}); read as {name}. "
                "Pass --encoding to choose another.",
            )
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


@dataclass(slots=True)  # not frozen: a frozen dataclass is slow to build, one per CSV row
class Row:
    """One CSV record: the line it starts on, its fields, and why it is suspect (or None)."""

    line: int
    fields: list[str]
    problem: str | None = None


def iter_rows(fh: io.TextIOBase, *, delimiter: str = ",") -> Iterator[Row]:
    """csv.reader over fh (opened with newline=""), each row with its first line.

    A quote left open swallows every later line into one field, up to the end of the file:
    the last record gets a problem when its text, read again, ends inside a quoted field
    (checked only when it holds a line break, so a normal file is read once). A record with
    the wrong number of fields is the caller's to judge (see opened_quote). A csv.Error is a
    problem row too; reading goes on after it.
    """
    reader = csv.reader(fh, delimiter=delimiter)
    held: Row | None = None  # one row behind, so the last one is known when it comes
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            fields = None
            end = reader.line_num
            span = f"lines {start}-{end} were" if end > start else f"line {start} was"
            if "field larger than field limit" in str(exc):  # what an open quote runs into
                problem = (
                    f"a field of the row on line {start} runs past {csv.field_size_limit():,} "
                    f"characters, so {span} skipped: a quote left open? close it (or double "
                    "it inside a field) and re-run"
                )
            else:
                problem = f"unreadable CSV row ({exc}); {span} skipped"
        if held is not None:
            yield held
        held = Row(start, fields) if fields is not None else Row(start, [], problem)
    if held is None:
        return
    multiline = any("\n" in f or "\r" in f for f in held.fields)
    if multiline and _left_open(_text_from(fh, held.line), delimiter):
        opened = held.line + sum(f.count("\n") for f in held.fields[:-1])
        end = reader.line_num
        span = f"lines {opened}-{end} were" if end > opened else f"the end of line {opened} was"
        held.problem = (
            f"a quote opened on line {opened} is never closed, so {span} read as one "
            "field; close the quote (or double it inside a field) and re-run"
        )
    yield held


def _text_from(fh: io.TextIOBase, line: int) -> str:
    """The file's text from the start of line on (fh is read again from the top)."""
    fh.seek(0)
    return "".join(text for number, text in enumerate(fh, 1) if number >= line)


def _left_open(text: str, delimiter: str) -> bool:
    """Whether text (one record to the end of the file) ends inside a quoted field."""
    if not text.endswith(("\n", "\r")):
        text += "\n"
    rows = list(csv.reader(io.StringIO(text + "x\n", newline=""), delimiter=delimiter))
    return not rows or rows[-1] != ["x"]


def opened_quote(row: Row) -> int | None:
    """For a row with the wrong width: the line its first multi-line field opened on, if any."""
    line = row.line
    for f in row.fields:
        if "\n" in f:
            return line
        line += f.count("\n")
    return None
