"""The National Gallery of Art Open Data dump, read in NGA's own CSV format and column names.

Data: https://github.com/NationalGalleryOfArt/opendata (CC0). The join is

    objects ─ published_images (viewtype 'primary', depictstmsobjectid = objectid)
            ─ objects_constituents (roletype 'artist') ─ constituents
            ─ objects_terms (Style, School, Theme, Keyword, Technique)

objects.csv (>100,000 rows, large provenance texts) is streamed twice: a first pass only
collects the objectids worth keeping, so that the side tables are loaded into dicts for those
objects alone; the second pass builds the records. A partial dump without objects.csv (the
sample in shared/data/nga) still yields records, keyed by the `<objectid>.jpg` files of
images_dir, with a warning saying which fields are missing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artsim.errors import SourceError
from artsim.records import SourceItem
from artsim.sources import SourceProblem, SourceScan
from artsim.sources.csvtext import AUTO, detect_encoding, iter_rows, opened_quote
from artsim.sources.iiif import iiif_image_url

__all__ = ["NGA_OPENDATA_URL", "iter_table", "parse_year", "scan_nga"]

NGA_OPENDATA_URL = "https://github.com/NationalGalleryOfArt/opendata"

# Columns this reader needs from each table (NGA names, lower case as in the export).
OBJECTS_COLUMNS = (
    "objectid",
    "title",
    "displaydate",
    "beginyear",
    "endyear",
    "medium",
    "attribution",
    "classification",
)
PUBLISHED_IMAGES_COLUMNS = ("depictstmsobjectid", "viewtype", "iiifurl")
PUBLISHED_IMAGES_OPTIONAL = ("sequence", "width", "height", "maxpixels")
OBJECTS_TERMS_COLUMNS = ("objectid", "termtype", "term")
OBJECTS_CONSTITUENTS_COLUMNS = ("objectid", "constituentid", "displayorder", "roletype", "role")
CONSTITUENTS_COLUMNS = ("constituentid", "preferreddisplayname", "forwarddisplayname")
# Not an NGA table: objectid + thumbnail URL only, as shipped with the sample data.
PARTIAL_IMAGES_COLUMNS = ("objectid", "iiifthumburl")

TERM_KEYS = {
    "style": "style",
    "school": "school",
    "theme": "theme",
    "keyword": "keyword",
    "technique": "technique",
}
PAINTING_CLASSIFICATION = "painting"
PAINTING_TECHNIQUE = "painted surface"
# Artist rows naming someone who did not make the object ("Workshop of", "after", the
# publisher or printer of a print): used only when an object has no other artist row.
SECONDARY_ARTIST_ROLES = frozenset({"related artist", "artist after", "publisher", "printer"})
OBJECT_FIELDS = ("title", "attribution", "date", "year", "year_end", "classification", "medium")

_YEAR = re.compile(r"\s*([+-]?\d{1,5})(?:\.0*)?\s*")
_ITALIC_TAG = re.compile(r"</?(?:i|em)>", re.IGNORECASE)
# NGA marks italics with underscores: _title_ -> title
_ITALIC_UNDERSCORE = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_IIIF_SUFFIX = re.compile(r"/full/[^/]+/[^/]+/[^/]+$")


@dataclass(frozen=True, slots=True)
class _Image:
    """The primary published image of an object."""

    base: str  # IIIF base URL ("" when only a thumbnail URL is known)
    thumb: str = ""
    sequence: tuple[int, str] = (0, "")
    longest_side: int | None = None
    maxpixels: int | None = None

    def url(self, size: int) -> str:
        if not self.base:
            return self.thumb
        # never ask for more than the source has (NGA upscales and blurs above maxpixels)
        box = size
        for limit in (self.maxpixels, self.longest_side):
            if limit and limit > 0:
                box = min(box, limit)
        return iiif_image_url(self.base, box, box)


def scan_nga(
    opendata_dir: str | Path,
    *,
    images_dir: str | Path | None = None,
    limit: int | None = None,
    all_classifications: bool = False,
    iiif_size: int = 1024,
) -> SourceScan:
    """Read the NGA Open Data CSVs in opendata_dir into SourceItems (paintings by default).

    images_dir: a folder of `<objectid>.jpg` files; a present file is used instead of the
    IIIF URL. limit: stop after this many items. iiif_size: the box (`!W,H`) requested from
    NGA's IIIF server.
    """
    root = Path(opendata_dir)
    if not root.is_dir():
        raise SourceError(
            f"{root}: not a folder; expected a folder with the NGA Open Data CSVs "
            f"(objects.csv, published_images.csv, objects_terms.csv, objects_constituents.csv, "
            f"constituents.csv) from {NGA_OPENDATA_URL}"
        )
    if limit is not None and limit < 0:
        raise SourceError(f"limit must be 0 or more, got {limit}")
    if iiif_size <= 0:
        raise SourceError(f"iiif_size must be a positive number of pixels, got {iiif_size}")
    images = Path(images_dir) if images_dir is not None else None
    if images is not None and not images.is_dir():
        raise SourceError(f"{images}: images folder not found")
    local = _local_images(images) if images is not None else {}
    reader = _Reader(root, all_classifications=all_classifications, iiif_size=iiif_size)
    if (root / "objects.csv").is_file():
        reader.scan_objects(local, limit)
    else:
        reader.scan_partial(local, images, limit)
    return reader.scan


class _Reader:
    """One scan of one dump: the tables found, the problems met, the items built."""

    def __init__(self, root: Path, *, all_classifications: bool, iiif_size: int) -> None:
        self.root = root
        self.all_classifications = all_classifications
        self.iiif_size = iiif_size
        self.scan = SourceScan()
        # one copy of each repeated value ("Painting", "oil on canvas", term names): across
        # 100,000+ records this saves tens of MB; dropped with the reader
        self._strings: dict[str, str] = {}

    def shared(self, text: str) -> str:
        return self._strings.setdefault(text, text)

    def table(self, name: str) -> Path | None:
        path = self.root / f"{name}.csv"
        return path if path.is_file() else None

    # -- full dump -------------------------------------------------------------------------

    def scan_objects(self, local: dict[int, Path], limit: int | None) -> None:
        objects = self.root / "objects.csv"
        # pass 1: which objects can be kept at all (broken rows are reported by pass 2)
        wanted: set[int] = set()
        for _line, row in iter_table(objects, OBJECTS_COLUMNS, problems=[]):
            oid = _parse_int(row["objectid"])
            if oid is None:
                continue
            cls = row["classification"].strip().lower()
            if self.all_classifications or not cls or cls == PAINTING_CLASSIFICATION:
                wanted.add(oid)
        if limit == 0:
            wanted = set()
        image_of = self.load_images(wanted, need_any=not local)
        terms = self.load_terms(wanted)
        artists = self.load_artists(wanted)

        seen: set[int] = set()
        undecided = 0
        for line, row in iter_table(objects, OBJECTS_COLUMNS, problems=self.scan.problems):
            if limit is not None and len(self.scan.items) >= limit:
                break
            where = f"{objects}:{line}"
            oid = _parse_int(row["objectid"])
            if oid is None:
                self.problem(where, f"objectid {row['objectid']!r} is not an integer; row skipped")
                continue
            if oid in seen:
                self.problem(where, f"duplicate objectid {oid}; row skipped")
                continue
            seen.add(oid)
            if oid not in wanted:
                continue
            object_terms = terms.pop(oid, {})
            classification = _clean(row["classification"])
            if not self.all_classifications and not classification:
                techniques = object_terms.get("technique")
                if techniques is None:
                    undecided += 1
                if not _has_painted_surface(techniques):
                    continue
            meta: dict[str, Any] = {"objectid": oid}
            _put(meta, "title", _clean(row["title"]))
            _put(meta, "attribution", self.shared(_clean(row["attribution"])))
            _put(meta, "artist", artists.pop(oid, ""))
            _put(meta, "date", self.shared(_clean(row["displaydate"])))
            for field, key in (("beginyear", "year"), ("endyear", "year_end")):
                text = row[field].strip()
                if not text:
                    continue
                year = parse_year(text)
                if year is None:
                    self.problem(
                        where,
                        f"objectid {oid}: field '{field}' = {text!r} is not a year; "
                        f"record kept without {key}",
                    )
                else:
                    meta[key] = year
            _put(meta, "classification", self.shared(classification))
            _put(meta, "medium", self.shared(_clean(row["medium"])))
            _put_terms(meta, object_terms)
            self.add_item(oid, meta, image_of.get(oid), local, where)
        if undecided:
            self.scan.warnings.append(
                f"{undecided} object(s) in {objects} have no classification and no Technique "
                f"term, so they cannot be recognised as paintings and were skipped "
                f"(all_classifications=True keeps them)"
            )

    # -- partial dump (no objects.csv) -----------------------------------------------------

    def scan_partial(self, local: dict[int, Path], images: Path | None, limit: int | None) -> None:
        partial = self.table("published_images_partial")
        if images is not None:
            ids = sorted(local)
            origin = f"the <objectid>.jpg files in {images}"
        elif self.table("published_images") is None and partial is not None:
            ids = sorted(
                oid
                for _line, row in iter_table(partial, PARTIAL_IMAGES_COLUMNS, problems=[])
                if (oid := _parse_int(row["objectid"])) is not None
            )
            origin = f"the objectids in {partial}"
        else:
            raise SourceError(
                f"{self.root / 'objects.csv'}: not found, and no images folder given to take "
                f"objectids from. Expected objects.csv with columns {', '.join(OBJECTS_COLUMNS)} "
                f"(from {NGA_OPENDATA_URL}), or pass images_dir with <objectid>.jpg files"
            )
        wanted = set(ids)
        image_of = self.load_images(wanted, need_any=not local)
        terms = self.load_terms(wanted)
        artists = self.load_artists(wanted)
        self.scan.warnings.insert(
            0,
            f"{self.root / 'objects.csv'} not found (partial dump): records are built from "
            f"{origin} and the tables present; {', '.join(OBJECT_FIELDS)} are missing from "
            f"every record because they come only from NGA's objects table"
            + (
                ""
                if self.all_classifications
                else f", and paintings are recognised only by the Technique term "
                f"'{PAINTING_TECHNIQUE}'"
            ),
        )
        undecided = 0
        for oid in ids:
            if limit is not None and len(self.scan.items) >= limit:
                break
            object_terms = terms.pop(oid, {})
            if not self.all_classifications:
                techniques = object_terms.get("technique")
                if techniques is None:
                    undecided += 1
                if not _has_painted_surface(techniques):
                    continue
            meta: dict[str, Any] = {"objectid": oid}
            _put(meta, "artist", artists.pop(oid, ""))
            _put_terms(meta, object_terms)
            where = str(local[oid]) if oid in local else f"objectid {oid}"
            self.add_item(oid, meta, image_of.get(oid), local, where)
        if undecided:
            self.scan.warnings.append(
                f"{undecided} object(s) have no Technique term in objects_terms.csv, so "
                f"they cannot be recognised as paintings and were skipped "
                f"(all_classifications=True keeps them)"
            )

    # -- shared ----------------------------------------------------------------------------

    def problem(self, where: str, reason: str) -> None:
        self.scan.problems.append(SourceProblem(where, reason))

    def add_item(
        self,
        oid: int,
        meta: dict[str, Any],
        image: _Image | None,
        local: dict[int, Path],
        where: str,
    ) -> None:
        url = image.url(self.iiif_size) if image else ""
        if image is not None:
            # a partial dump only has NGA's 200-px thumbnail URL: keep it as given
            meta["image_url"] = image.thumb or url
        meta["source"] = "nga"
        path = local.get(oid)
        target = str(path) if path is not None else url
        if not target:
            self.problem(
                where, f"objectid {oid} has no image (no primary published image, no local file)"
            )
            return
        self.scan.items.append(SourceItem(id=str(oid), image=target, metadata=meta))

    def load_images(self, wanted: set[int], *, need_any: bool) -> dict[int, _Image]:
        """objectid -> primary image, from published_images.csv or the partial thumbnail list."""
        full = self.table("published_images")
        partial = self.table("published_images_partial")
        found: dict[int, _Image] = {}
        if full is not None:
            for line, row in iter_table(
                full,
                PUBLISHED_IMAGES_COLUMNS,
                PUBLISHED_IMAGES_OPTIONAL,
                self.scan.problems,
                only=("depictstmsobjectid", _as_text(wanted)),
            ):
                if row["viewtype"].strip().lower() != "primary":
                    continue
                oid = _parse_int(row["depictstmsobjectid"])
                if oid is None or oid not in wanted:
                    continue
                base = row["iiifurl"].strip().rstrip("/")
                if not base:
                    self.problem(f"{full}:{line}", f"objectid {oid}: empty iiifurl")
                    continue
                seq_text = row.get("sequence", "").strip()
                seq = (_parse_int(seq_text) or 0, seq_text)
                width = _parse_int(row.get("width", ""))
                height = _parse_int(row.get("height", ""))
                image = _Image(
                    base=base,
                    sequence=seq,
                    longest_side=max(width, height) if width and height else None,
                    maxpixels=_parse_int(row.get("maxpixels", "")),
                )
                # several primary rows: the lowest sequence is the one NGA shows first
                if oid not in found or seq < found[oid].sequence:
                    found[oid] = image
            return found
        if partial is not None:
            for _line, row in iter_table(partial, PARTIAL_IMAGES_COLUMNS, (), self.scan.problems):
                oid = _parse_int(row["objectid"])
                if oid is None or oid not in wanted:
                    continue
                thumb = row["iiifthumburl"].strip()
                if not thumb:
                    continue
                # NGA builds iiifthumburl as iiifurl + '/full/!200,200/0/default.jpg'
                base = _IIIF_SUFFIX.sub("", thumb) if _IIIF_SUFFIX.search(thumb) else ""
                found[oid] = _Image(base=base, thumb=thumb)
            self.scan.warnings.append(
                f"{self.root / 'published_images.csv'} not found: image URLs come from "
                f"{partial} ({len(found)} of {len(wanted)} objects), which holds only "
                f"objectid and iiifthumburl; the IIIF base is taken from the thumbnail URL, and "
                f"image_url is that 200-px thumbnail; image width, height and maxpixels are unknown"
            )
            return found
        if need_any:
            raise SourceError(
                f"{full or self.root / 'published_images.csv'}: not found and no images folder "
                f"given, so no object has an image. Expected published_images.csv with columns "
                f"{', '.join(PUBLISHED_IMAGES_COLUMNS + PUBLISHED_IMAGES_OPTIONAL)} "
                f"(from {NGA_OPENDATA_URL}), or pass images_dir with <objectid>.jpg files"
            )
        self.scan.warnings.append(
            f"{self.root / 'published_images.csv'} not found: image_url is missing from every "
            f"record; only objects with a local <objectid>.jpg are kept"
        )
        return found

    def load_terms(self, wanted: set[int]) -> dict[int, dict[str, list[str]]]:
        """objectid -> {'style': [...], 'technique': [...], ...} for the wanted objects."""
        path = self.table("objects_terms")
        if path is None:
            self.scan.warnings.append(
                f"{self.root / 'objects_terms.csv'} not found: style, school, theme, keyword and "
                f"technique are missing from every record"
            )
            return {}
        terms: dict[int, dict[str, list[str]]] = {}
        only = ("objectid", _as_text(wanted))
        for _line, row in iter_table(
            path, OBJECTS_TERMS_COLUMNS, (), self.scan.problems, only=only
        ):
            key = TERM_KEYS.get(row["termtype"].strip().lower())
            if key is None:
                continue
            oid = _parse_int(row["objectid"])
            if oid is None or oid not in wanted:
                continue
            term = self.shared(_clean(row["term"]))
            if not term:
                continue
            values = terms.setdefault(oid, {}).setdefault(key, [])
            if term not in values:
                values.append(term)
        return terms

    def load_artists(self, wanted: set[int]) -> dict[int, str]:
        """objectid -> artist display names ('; '-joined, NGA display order)."""
        links_path = self.table("objects_constituents")
        people_path = self.table("constituents")
        if links_path is None or people_path is None:
            missing = [p for p in ("objects_constituents", "constituents") if self.table(p) is None]
            self.scan.warnings.append(
                f"{', '.join(f'{m}.csv' for m in missing)} not found in {self.root}: artist is "
                f"missing from every record"
            )
            return {}
        # objectid -> [(is_secondary, displayorder, constituentid)]
        links: dict[int, list[tuple[bool, int, int]]] = {}
        only = ("objectid", _as_text(wanted))
        for _line, row in iter_table(
            links_path, OBJECTS_CONSTITUENTS_COLUMNS, (), self.scan.problems, only=only
        ):
            if row["roletype"].strip().lower() != "artist":
                continue
            oid = _parse_int(row["objectid"])
            cid = _parse_int(row["constituentid"])
            if oid is None or cid is None or oid not in wanted:
                continue
            secondary = row["role"].strip().lower() in SECONDARY_ARTIST_ROLES
            order = _parse_int(row["displayorder"])
            links.setdefault(oid, []).append((secondary, order if order is not None else 0, cid))
        needed = {cid for rows in links.values() for _s, _o, cid in rows}
        names: dict[int, str] = {}
        only = ("constituentid", _as_text(needed))
        for _line, row in iter_table(
            people_path, CONSTITUENTS_COLUMNS, (), self.scan.problems, only=only
        ):
            cid = _parse_int(row["constituentid"])
            if cid is None or cid not in needed:
                continue
            name = _clean(row["forwarddisplayname"]) or _clean(row["preferreddisplayname"])
            if name:
                names[cid] = name
        out: dict[int, str] = {}
        for oid, rows in links.items():
            primary = [r for r in rows if not r[0]] or rows
            ordered: list[str] = []
            for _s, _o, cid in sorted(primary, key=lambda r: r[1]):
                artist = names.get(cid)
                if artist and artist not in ordered:
                    ordered.append(artist)
            if ordered:
                out[oid] = "; ".join(ordered)
        return out


def iter_table(
    path: Path,
    required: Iterable[str],
    optional: Iterable[str] = (),
    problems: list[SourceProblem] | None = None,
    *,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
    fold_case: bool = True,
    only: tuple[str, Container[str]] | None = None,
    warnings: list[str] | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """Stream a CSV as (line number where the row starts, {column: value}) for the named columns.

    The header must hold every required column (case-insensitive unless fold_case is False),
    else SourceError listing them. A row with the wrong number of fields, or one the csv
    module cannot parse, is added to problems with its line number and skipped.
    only=(column, values): skip, before any other work, rows whose column (stripped) is not
    in values; how side tables of 600,000 rows are read for a few thousand objects.
    encoding="auto" detects it (see artsim.sources.csvtext; warnings gets the note when it is
    not UTF-8); a named encoding is trusted, and bytes it cannot decode become U+FFFD.
    """

    def norm(name: str) -> str:
        return name.strip().lower() if fold_case else name.strip()

    required = tuple(dict.fromkeys(norm(c) for c in required))
    optional = tuple(norm(c) for c in optional)
    if encoding.lower() == AUTO:
        enc = detect_encoding(path)
        encoding = enc.name
        if enc.note and warnings is not None:
            warnings.append(enc.note)
    try:
        fh = path.open(newline="", encoding=encoding, errors="replace")
    except OSError as exc:
        raise SourceError(
            f"{path}: cannot open ({exc.strerror or exc}); expected columns: {', '.join(required)}"
        ) from exc
    with fh:
        rows = iter_rows(fh, delimiter=delimiter)
        first = next(rows, None)
        if first is None:
            raise SourceError(
                f"{path}: empty file; expected a header with columns: {', '.join(required)}"
            )
        if first.problem:
            raise SourceError(f"{path}: unreadable header ({first.problem})")
        names = [norm(h) for h in first.fields]
        missing = [c for c in required if c not in names]
        if missing:
            raise SourceError(
                f"{path}: missing column(s) {', '.join(missing)}; expected columns: "
                f"{', '.join(required)} (found: {', '.join(names) or 'none'})"
            )
        index = [(c, names.index(c)) for c in (*required, *optional) if c in names]
        width = len(names)
        only_at, only_values = (names.index(norm(only[0])), only[1]) if only else (-1, ())
        for row in rows:
            fields = row.fields
            if row.problem:
                if problems is not None:
                    problems.append(SourceProblem(f"{path}:{row.line}", row.problem))
                continue
            if not fields:
                continue
            if len(fields) != width:
                if problems is not None:
                    reason = f"row has {len(fields)} fields, the header has {width}"
                    opened = opened_quote(row)
                    if opened is not None:
                        reason += f" (a quoted field opened on line {opened} spans several lines)"
                    problems.append(SourceProblem(f"{path}:{row.line}", reason + "; row skipped"))
                continue
            if only_at >= 0 and fields[only_at].strip() not in only_values:
                continue
            yield row.line, {c: fields[i] for c, i in index}


def _local_images(folder: Path) -> dict[int, Path]:
    """objectid -> resolved path of every `<objectid>.jpg` in folder (one listing, no stat per object)."""
    out: dict[int, Path] = {}
    base = folder.resolve()
    for name in os.listdir(base):
        stem, dot, ext = name.rpartition(".")
        if dot and ext.lower() == "jpg" and stem.isdigit():
            out[int(stem)] = base / name
    return out


def _as_text(ids: set[int]) -> frozenset[str]:
    # compare ids as the CSV writes them, so that unwanted rows cost no int() or dict
    return frozenset(map(str, ids))


def _has_painted_surface(techniques: list[str] | None) -> bool:
    return bool(techniques) and any(t.lower() == PAINTING_TECHNIQUE for t in techniques or ())


def _parse_int(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse_year(text: str) -> int | None:
    """An integer year ('1520', '-30', '1520.0'), or None for anything else ('c. 1520')."""
    match = _YEAR.fullmatch(text)
    return int(match.group(1)) if match else None


def _clean(text: str | None) -> str:
    """Strip NGA's italics markup (<i>..</i>, _.._) and surrounding space."""
    if not text:
        return ""
    text = _ITALIC_TAG.sub("", text)
    if "_" in text:
        text = _ITALIC_UNDERSCORE.sub(r"\1", text)
    return text.strip()


def _put_terms(meta: dict[str, Any], terms: dict[str, list[str]]) -> None:
    for key in TERM_KEYS.values():  # always the same key order
        if terms.get(key):
            meta[key] = terms[key]


def _put(meta: dict[str, Any], key: str, value: Any) -> None:
    if value not in (None, "", []):
        meta[key] = value
