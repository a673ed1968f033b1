"""Any museum's CSV + IIIF collection, read through a TOML column-mapping file.

The mapping names, for each canonical metadata key artsim uses (the same keys as the NGA
reader: title, attribution, artist, date, year, year_end, classification, medium, style,
school, theme, keyword, technique, image_url, source), the CSV column that holds it; how to
build the image URL (a full URL column, or an IIIF base column + size); optionally a
folder of local copies, a row filter and extra columns kept as they are. See
docs/collections.md for a complete example.

    [collection]
    name = "mauritshuis"                 # metadata["source"]
    [columns]
    id = "object_number"
    title = "title"
    year = "year_start"
    [lists]
    style = { column = "styles", separator = ";" }
    [image]
    iiif_base = "iiif_service"
    iiif_size = 1024
    [extra]
    inventory = "inventory_number"
"""

from __future__ import annotations

import codecs
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artsim.errors import SourceError
from artsim.records import SourceItem
from artsim.sources import SourceProblem, SourceScan
from artsim.sources.csvtext import AUTO, detect_encoding
from artsim.sources.iiif import iiif_image_url, refusal
from artsim.sources.nga import iter_table, parse_year

SCALAR_KEYS = (
    "title",
    "attribution",
    "artist",
    "date",
    "year",
    "year_end",
    "classification",
    "medium",
)
LIST_KEYS = ("style", "school", "theme", "keyword", "technique")
RESERVED_KEYS = frozenset({"id", *SCALAR_KEYS, *LIST_KEYS, "image_url", "source", "objectid"})
_TABLES = {
    "collection": {"name", "delimiter", "encoding", "year_from_date"},
    "columns": {"id", *SCALAR_KEYS},
    "lists": set(LIST_KEYS),
    "image": {"url", "iiif_base", "iiif_prefix", "iiif_size", "local_dir", "local_name"},
    "filter": {"column", "values"},
    "extra": None,  # any metadata key -> column
}
_FIRST_YEAR = re.compile(r"(?<!\d)(\d{3,4})(?!\d)")


@dataclass(frozen=True, slots=True)
class ListColumn:
    column: str
    separator: str | None = None


@dataclass(frozen=True, slots=True)
class Mapping:
    """A parsed, checked mapping file."""

    path: Path
    id_column: str
    name: str = "csv"
    delimiter: str = ","
    encoding: str = "auto"
    year_from_date: bool = False
    columns: dict[str, str] = field(default_factory=dict)  # canonical scalar key -> column
    lists: dict[str, ListColumn] = field(default_factory=dict)
    url_column: str | None = None
    iiif_base_column: str | None = None
    iiif_prefix: str = ""
    iiif_size: int = 1024
    local_dir: Path | None = None
    local_name: str = "{id}.jpg"
    filter_column: str | None = None
    filter_values: frozenset[str] = frozenset()
    extra: dict[str, str] = field(default_factory=dict)  # metadata key -> column

    def csv_columns(self) -> list[str]:
        """Every CSV column the mapping reads."""
        cols = [self.id_column, *self.columns.values(), *(c.column for c in self.lists.values())]
        cols += [c for c in (self.url_column, self.iiif_base_column, self.filter_column) if c]
        cols += self.extra.values()
        return list(dict.fromkeys(cols))


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file; SourceError names the file and the wrong entry."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"{path}: mapping file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read mapping file ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SourceError(f"{path}: not valid TOML ({exc})") from exc

    for table, value in raw.items():
        if table not in _TABLES:
            raise SourceError(
                f"{path}: unknown table [{table}]; allowed: {', '.join(f'[{t}]' for t in _TABLES)}"
            )
        if not isinstance(value, dict):
            raise SourceError(f"{path}: '{table}' must be a table ([{table}])")
        allowed = _TABLES[table]
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise SourceError(
                        f"{path}: unknown key '{key}' in [{table}]; allowed: {', '.join(sorted(allowed))}"
                    )

    def text(table: str, key: str, default: str | None = None) -> str | None:
        value = raw.get(table, {}).get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise SourceError(f"{path}: [{table}] {key} must be a non-empty string")
        return value.strip() if isinstance(value, str) else value

    collection = raw.get("collection", {})
    columns = raw.get("columns", {})
    id_column = text("columns", "id")
    if id_column is None:
        raise SourceError(
            f"{path}: [columns] needs 'id' (the CSV column with a unique id for each row); "
            f"mappable keys: id, {', '.join(SCALAR_KEYS)}"
        )
    scalars = {k: text("columns", k) for k in SCALAR_KEYS if k in columns}

    lists: dict[str, ListColumn] = {}
    for key, spec in raw.get("lists", {}).items():
        if isinstance(spec, str) and spec.strip():
            lists[key] = ListColumn(spec.strip())
        elif isinstance(spec, dict) and isinstance(spec.get("column"), str):
            unknown = set(spec) - {"column", "separator"}
            sep = spec.get("separator")
            if unknown or (sep is not None and (not isinstance(sep, str) or not sep)):
                raise SourceError(
                    f"{path}: [lists] {key} takes 'column' and an optional non-empty 'separator'"
                )
            lists[key] = ListColumn(spec["column"].strip(), sep)
        else:
            raise SourceError(
                f'{path}: [lists] {key} must be a column name or {{ column = "...", separator = ";" }}'
            )

    url_column = text("image", "url")
    iiif_base = text("image", "iiif_base")
    if url_column and iiif_base:
        raise SourceError(f"{path}: [image] takes either 'url' or 'iiif_base', not both")
    image = raw.get("image", {})
    iiif_size = image.get("iiif_size", 1024)
    if not isinstance(iiif_size, int) or isinstance(iiif_size, bool) or iiif_size <= 0:
        raise SourceError(f"{path}: [image] iiif_size must be a positive integer (pixels)")
    prefix = image.get("iiif_prefix", "")
    if not isinstance(prefix, str) or (prefix and refusal(prefix) is not None):
        raise SourceError(f"{path}: [image] iiif_prefix must be an http(s) URL")
    if prefix and not iiif_base:
        raise SourceError(f"{path}: [image] iiif_prefix needs iiif_base (the column it prefixes)")
    local = text("image", "local_dir")
    local_dir = (path.parent / local).resolve() if local else None
    local_name = text("image", "local_name", "{id}.jpg") or "{id}.jpg"
    if "{id}" not in local_name:
        raise SourceError(f'{path}: [image] local_name must contain {{id}}, e.g. "{{id}}.jpg"')
    if not (url_column or iiif_base or local_dir):
        raise SourceError(
            f"{path}: [image] needs 'url' (a column of image URLs), 'iiif_base' (a column of "
            f"IIIF Image API base URLs) or 'local_dir' (a folder of local copies)"
        )

    filt = raw.get("filter", {})
    filter_column = text("filter", "column")
    values = filt.get("values", [])
    if (filter_column or "values" in filt) and (
        not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values)
    ):
        raise SourceError(f"{path}: [filter] values must be a non-empty list of strings")
    if values and not filter_column:
        raise SourceError(f"{path}: [filter] values needs 'column'")

    extra: dict[str, str] = {}
    for key, column in raw.get("extra", {}).items():
        if key in RESERVED_KEYS:
            raise SourceError(
                f"{path}: [extra] {key} clashes with a canonical key; map it in [columns] or "
                f"[lists], or give the extra column another name"
            )
        if not isinstance(column, str) or not column.strip():
            raise SourceError(f"{path}: [extra] {key} must be a column name")
        extra[key] = column.strip()

    encoding = text("collection", "encoding", AUTO) or AUTO
    try:
        if encoding.lower() != AUTO:
            codecs.lookup(encoding)
    except LookupError:
        raise SourceError(f"{path}: [collection] encoding {encoding!r} is unknown") from None
    delimiter = collection.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise SourceError(f"{path}: [collection] delimiter must be one character")
    year_from_date = collection.get("year_from_date", False)
    if not isinstance(year_from_date, bool):
        raise SourceError(f"{path}: [collection] year_from_date must be true or false")

    return Mapping(
        path=path,
        id_column=id_column,
        name=text("collection", "name", "csv") or "csv",
        delimiter=delimiter,
        encoding=encoding,
        year_from_date=year_from_date,
        columns={k: v for k, v in scalars.items() if v},
        lists=lists,
        url_column=url_column,
        iiif_base_column=iiif_base,
        iiif_prefix=prefix,
        iiif_size=iiif_size,
        local_dir=local_dir,
        local_name=local_name,
        filter_column=filter_column,
        filter_values=frozenset(v.strip().lower() for v in values),
        extra=extra,
    )


def scan_mapped_csv(
    csv_path: str | Path, mapping_path: str | Path, *, encoding: str | None = None
) -> SourceScan:
    """Read a museum CSV through its mapping file into SourceItems with canonical metadata.

    encoding: overrides the mapping's [collection] encoding (default "auto": detected)."""
    mapping = load_mapping(mapping_path)
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise SourceError(
            f"{csv_path}: CSV not found (mapping {mapping.path} expects columns: "
            f"{', '.join(mapping.csv_columns())})"
        )
    if mapping.local_dir is not None and not mapping.local_dir.is_dir():
        raise SourceError(f"{mapping.path}: [image] local_dir {mapping.local_dir} is not a folder")
    scan = SourceScan()
    enc = detect_encoding(csv_path, encoding or mapping.encoding)
    if enc.note:
        scan.warnings.append(enc.note)
    seen: set[str] = set()
    rows = iter_table(
        csv_path,
        mapping.csv_columns(),
        problems=scan.problems,
        delimiter=mapping.delimiter,
        encoding=enc.name,
        fold_case=False,
    )
    for line, row in rows:
        where = f"{csv_path}:{line}"
        item_id = row[mapping.id_column].strip()
        if not item_id:
            scan.problems.append(SourceProblem(where, f"empty id (column '{mapping.id_column}')"))
            continue
        if mapping.filter_column:
            value = row[mapping.filter_column].strip().lower()
            if value not in mapping.filter_values:
                continue
        if item_id in seen:
            scan.problems.append(SourceProblem(where, f"duplicate id {item_id!r}; row skipped"))
            continue
        item = _item(mapping, row, item_id, where, scan.problems)
        if item is not None:
            seen.add(item_id)
            scan.items.append(item)
    return scan


def _item(
    mapping: Mapping,
    row: dict[str, str],
    item_id: str,
    where: str,
    problems: list[SourceProblem],
) -> SourceItem | None:
    meta: dict[str, Any] = {}
    for key in SCALAR_KEYS:
        column = mapping.columns.get(key)
        value = row[column].strip() if column else ""
        if key in ("year", "year_end"):
            if not value and key == "year" and mapping.year_from_date:
                match = _FIRST_YEAR.search(meta.get("date", ""))
                value = match.group(1) if match else ""
            if not value:
                continue
            year = parse_year(value)
            if year is None:
                problems.append(
                    SourceProblem(
                        where,
                        f"id {item_id!r}: column '{column}' = {value!r} is not a year; "
                        f"record kept without {key}",
                    )
                )
                continue
            meta[key] = year
        elif value:
            meta[key] = value
    for key in LIST_KEYS:
        spec = mapping.lists.get(key)
        if spec is None:
            continue
        raw = row[spec.column]
        parts = raw.split(spec.separator) if spec.separator else [raw]
        values = list(dict.fromkeys(p.strip() for p in parts if p.strip()))
        if values:
            meta[key] = values

    url = ""
    if mapping.url_column:
        url = row[mapping.url_column].strip()
    elif mapping.iiif_base_column:
        base = row[mapping.iiif_base_column].strip()
        if base:
            base = mapping.iiif_prefix + base if mapping.iiif_prefix else base
            url = iiif_image_url(base, mapping.iiif_size, mapping.iiif_size)
    refused = ""
    if url:
        reason = refusal(url)
        if reason is not None:
            column = mapping.url_column or mapping.iiif_base_column
            refused = f"id {item_id!r}: image {url!r} (column '{column}'): {reason}"
            url = ""
        else:
            meta["image_url"] = url
    image = url
    if mapping.local_dir is not None:
        name = mapping.local_name.replace("{id}", item_id)
        try:
            local: Path | None = (mapping.local_dir / name).resolve()
        except (RuntimeError, OSError, ValueError):  # a symlink loop, a NUL in the id
            local = None
        # an id like '../x' must not reach outside the folder
        if local is not None and local.is_relative_to(mapping.local_dir) and local.is_file():
            image = str(local)
    if not image:
        reason = refused or f"id {item_id!r} has no image"
        problems.append(SourceProblem(where, f"{reason}; row skipped"))
        return None
    if refused:  # kept through its local copy, but the URL column is wrong
        problems.append(SourceProblem(where, refused))
    meta["source"] = mapping.name
    for key, column in mapping.extra.items():
        value = row[column].strip()
        if value:
            meta[key] = value
    return SourceItem(id=item_id, image=image, metadata=meta)
