"""Sources: where paintings come from. Each yields SourceItem records and reports bad rows.

- a folder of images (recursive), ids = path relative to the folder;
- a CSV manifest with an `image` column (path or http(s) URL), optional `id`, any metadata;
- the NGA Open Data dump (artsim.sources.nga).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from artsim.errors import SourceError
from artsim.images import is_image_path
from artsim.records import SourceItem


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


def iter_folder(root: Path) -> Iterator[Path]:
    """Image files under root, recursively, in a stable (sorted) order; hidden files skipped."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and is_image_path(path):
                yield path


def scan_folder(root: str | Path) -> SourceScan:
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"{root}: not a folder")
    scan = SourceScan()
    for path in iter_folder(root):
        rel = path.relative_to(root).as_posix()
        scan.items.append(SourceItem(id=rel, image=str(path.resolve()), metadata={}))
    scan.items.sort(key=lambda it: it.id)
    return scan


def scan_csv(path: str | Path, *, image_column: str = "image", id_column: str = "id") -> SourceScan:
    """Read a CSV manifest. Relative image paths are resolved against the CSV's folder."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: CSV manifest not found")
    scan = SourceScan()
    seen: set[str] = set()
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if image_column not in header:
            raise SourceError(
                f"{path}: no '{image_column}' column (columns found: {', '.join(header) or 'none'}); "
                f"the manifest needs an '{image_column}' column holding a file path or an http(s) URL"
            )
        try:
            for row in reader:
                line = reader.line_num
                if None in row or any(v is None for v in row.values()):
                    scan.problems.append(
                        SourceProblem(
                            f"{path}:{line}",
                            f"row has the wrong number of fields (expected {len(header)})",
                        )
                    )
                    continue
                image = (row.get(image_column) or "").strip()
                if not image:
                    scan.problems.append(
                        SourceProblem(f"{path}:{line}", f"empty '{image_column}' field")
                    )
                    continue
                if not is_url(image):
                    if "://" in image:
                        scan.problems.append(
                            SourceProblem(
                                f"{path}:{line}",
                                f"unsupported URL scheme in {image!r} (http/https only)",
                            )
                        )
                        continue
                    image = str((path.parent / image).resolve())
                item_id = (row.get(id_column) or "").strip() if id_column in header else ""
                if not item_id:
                    item_id = image if is_url(image) else _relative_id(Path(image), path.parent)
                if item_id in seen:
                    scan.problems.append(
                        SourceProblem(f"{path}:{line}", f"duplicate id {item_id!r}")
                    )
                    continue
                seen.add(item_id)
                metadata = {
                    k: v for k, v in row.items() if k not in (image_column, id_column) and v != ""
                }
                scan.items.append(SourceItem(id=item_id, image=image, metadata=metadata))
        except csv.Error as exc:
            scan.problems.append(
                SourceProblem(
                    f"{path}:{reader.line_num}", f"unreadable CSV ({exc}); rest of file skipped"
                )
            )
    return scan


def _relative_id(image: Path, base: Path) -> str:
    try:
        return image.relative_to(base.resolve()).as_posix()
    except ValueError:
        return image.as_posix()


def scan_source(source: str | Path) -> SourceScan:
    """Dispatch on what the source is: a folder, a CSV manifest, or a single image."""
    path = Path(source)
    if path.is_dir():
        return scan_folder(path)
    if path.suffix.lower() == ".csv":
        return scan_csv(path)
    if path.is_file() and is_image_path(path):
        return SourceScan(items=[SourceItem(id=path.name, image=str(path.resolve()))])
    raise SourceError(f"{source}: not a folder, a .csv manifest or an image file")
