"""Sources: where paintings come from. Each yields SourceItem records and reports bad rows.

- a folder of images (recursive), ids = path relative to the folder;
- a CSV manifest with an `image` column (path or http(s) URL), optional `id`, any metadata;
- the NGA Open Data dump (artsim.sources.nga).
"""

from __future__ import annotations

import errno
import mimetypes
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from artsim.errors import SourceError
from artsim.images import IMAGE_EXTENSIONS, is_image_path
from artsim.records import SourceItem
from artsim.sources.csvtext import detect_encoding, iter_rows, opened_quote


@dataclass(slots=True)
class SourceProblem:
    """A row or file the source had to skip, with where and why."""

    where: str
    reason: str


@dataclass(slots=True)
class SourceScan:
    """The items a source offers plus the problems met while reading it."""

    items: list[SourceItem] = field(default_factory=list)
    problems: list[SourceProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def iter_folder(root: Path, problems: list[SourceProblem] | None = None) -> Iterator[Path]:
    """Image files under root, recursively, in a stable (sorted) order; hidden files skipped.

    Files that look like images of a format we do not index (GIF, HEIC, SVG...), folders
    that cannot be read and linked folders (not followed) are added to problems, so nothing
    vanishes without a line."""

    def unreadable(exc: OSError) -> None:
        if problems is not None:
            problems.append(
                SourceProblem(str(exc.filename or root), f"folder skipped: {_os_reason(exc)}")
            )

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in dirnames:
            if problems is not None and os.path.islink(os.path.join(dirpath, name)):
                # os.walk does not follow them (a link back up would loop): say so
                problems.append(
                    SourceProblem(
                        os.path.join(dirpath, name),
                        "folder skipped: a symbolic link (not followed); index its target itself",
                    )
                )
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if is_image_path(path):
                yield path
            elif problems is not None and _looks_like_image(name):
                problems.append(
                    SourceProblem(
                        str(path),
                        f"unsupported image format ({path.suffix.lower() or name}); supported: "
                        f"{', '.join(sorted(IMAGE_EXTENSIONS))}; convert it to PNG or JPEG",
                    )
                )


def _looks_like_image(name: str) -> bool:
    kind = mimetypes.guess_type(name, strict=False)[0]
    return kind is not None and kind.startswith("image/")


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.EACCES or isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "symlink loop (the link leads back to itself); fix or remove the link"
    return exc.strerror or str(exc)


def resolve_path(path: Path) -> Path | OSError:
    """path.resolve(), or the OSError saying why it cannot be (a symlink loop, say)."""
    try:
        return path.resolve(strict=True)
    except RuntimeError as exc:  # Python < 3.13 raises RuntimeError for a symlink loop
        return OSError(errno.ELOOP, f"symlink loop ({exc})", str(path))
    except OSError as exc:
        if exc.errno == errno.ENOENT and path.is_symlink():
            return OSError(errno.ENOENT, "broken symlink (its target does not exist)", str(path))
        return exc


def scan_folder(root: str | Path) -> SourceScan:
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: not a folder")
    scan = SourceScan()
    for path in iter_folder(root, scan.problems):
        resolved = resolve_path(path)
        if isinstance(resolved, OSError):
            scan.problems.append(SourceProblem(str(path), f"skipped: {_os_reason(resolved)}"))
            continue
        rel = path.relative_to(root).as_posix()
        scan.items.append(SourceItem(id=rel, image=str(resolved), metadata={}))
    scan.items.sort(key=lambda it: it.id)
    return scan


def scan_csv(
    path: str | Path,
    *,
    image_column: str = "image",
    id_column: str = "id",
    encoding: str | None = None,
) -> SourceScan:
    """Read a CSV manifest. Relative image paths are resolved against the CSV's folder.

    encoding: None or "auto" detects it (UTF-8 with or without BOM, UTF-16 with a BOM, else
    cp1252, else Latin-1, with a warning saying so); a name is checked against the whole file.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: CSV manifest not found")
    enc = detect_encoding(path, encoding)
    scan = SourceScan()
    if enc.note:
        scan.warnings.append(enc.note)
    seen: set[str] = set()
    with path.open(newline="", encoding=enc.name, errors=enc.errors) as fh:
        rows = iter_rows(fh)
        first = next(rows, None)
        if first is not None and first.problem:  # a quote left open in the header ate the file
            raise SourceError(f"{path}:{first.line}: unreadable header ({first.problem})")
        header = [h.strip() for h in first.fields] if first is not None else []
        if image_column not in header:
            raise SourceError(
                f"{path}: no '{image_column}' column (columns found: {', '.join(header) or 'none'}); "
                f"the manifest needs an '{image_column}' column holding a file path or an http(s) URL"
            )
        for row in rows:
            where = f"{path}:{row.line}"
            if row.problem:
                scan.problems.append(SourceProblem(where, row.problem))
                continue
            if not row.fields:
                continue
            if len(row.fields) != len(header):
                reason = f"row has {len(row.fields)} fields, the header has {len(header)}"
                opened = opened_quote(row)
                if opened is not None:
                    reason += f" (a quoted field opened on line {opened} spans several lines)"
                scan.problems.append(SourceProblem(where, reason + "; row skipped"))
                continue
            record = dict(zip(header, row.fields, strict=True))
            image = record[image_column].strip()
            if not image:
                scan.problems.append(SourceProblem(where, f"empty '{image_column}' field"))
                continue
            if "\x00" in image:
                scan.problems.append(
                    SourceProblem(where, f"'{image_column}' holds a NUL character; row skipped")
                )
                continue
            if not is_url(image):
                if "://" in image:
                    scan.problems.append(
                        SourceProblem(
                            where, f"unsupported URL scheme in {image!r} (http/https only)"
                        )
                    )
                    continue
                image = str(_resolve_lenient(path.parent / image))
            item_id = record.get(id_column, "").strip()
            if not item_id:
                item_id = image if is_url(image) else _relative_id(Path(image), path.parent)
            if item_id in seen:
                scan.problems.append(SourceProblem(where, f"duplicate id {item_id!r}"))
                continue
            seen.add(item_id)
            metadata = {
                k: v for k, v in record.items() if k not in (image_column, id_column) and v != ""
            }
            scan.items.append(SourceItem(id=item_id, image=image, metadata=metadata))
    return scan


def _resolve_lenient(path: Path) -> Path:
    """An absolute path even for a loop or a missing file (opening it then fails, with a row)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return Path(os.path.abspath(path))


def _relative_id(image: Path, base: Path) -> str:
    try:
        return image.relative_to(base.resolve()).as_posix()
    except ValueError:
        return image.as_posix()


def scan_source(source: str | Path, *, encoding: str | None = None) -> SourceScan:
    """Dispatch on what the source is: a folder, a CSV manifest, or a single image.

    encoding: the CSV manifest's text encoding (None: detected); ignored for folders."""
    path = Path(source)
    if path.is_dir():
        return scan_folder(path)
    if path.suffix.lower() == ".csv":
        return scan_csv(path, encoding=encoding)
    if path.is_file() and is_image_path(path):
        return SourceScan(items=[SourceItem(id=path.name, image=str(path.resolve()))])
    raise SourceError(f"{source}: not a folder, a .csv manifest or an image file")
