"""Fuzzing: generated and mutated input to every entry point that reads what a user (or an
attacker) hands us: image bytes, CSV manifests, TOML mappings, `where` filters, HTTP requests.

Invariants: the only exceptions are the project's own (ArtsimError and subclasses), which the
CLI prints as one line; no HTTP answer is a 5xx; the catalog on disk is unchanged after each
request. Each target is a function of a random.Random, so hypothesis drives it here (bounded
by max_examples) and benchmarks/fuzz.py runs the same targets for 10,000+ cases.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from artsim.errors import ArtsimError, ImageLoadError, SourceError
from artsim.images import open_image
from artsim.search.filters import filter_mask, parse_where
from artsim.sources import scan_csv
from artsim.sources.mapping import load_mapping, scan_mapped_csv
from tests.images_factory import gradient

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RANDOMS = st.randoms(use_true_random=False)


# ---------------------------------------------------------------------- generators


def _seed_images() -> list[bytes]:
    """Small valid files in every format and mode open_image meets; mutations start here."""
    base = gradient(40, 30, seed=1)
    out = []
    for fmt, im, kw in [
        ("JPEG", base, {"quality": 80}),
        ("JPEG", base.convert("CMYK"), {}),
        ("PNG", base, {}),
        ("PNG", base.convert("RGBA"), {}),
        ("PNG", base.convert("P"), {}),
        ("PNG", Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 16), {}),
        ("TIFF", base, {}),
        ("TIFF", base, {"compression": "tiff_lzw"}),
        ("WEBP", base, {}),
        ("BMP", base, {}),
        ("GIF", base, {}),
    ]:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        out.append(buf.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    base.save(buf, "JPEG", exif=exif)
    out.append(buf.getvalue())
    return out


SEED_IMAGES = _seed_images()


def mutate(rnd: random.Random, data: bytes) -> bytes:
    """Flip, overwrite, insert, delete or truncate a few bytes; the header gets most of them."""
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        if not buf:
            break
        op = rnd.random()
        at = rnd.randrange(min(len(buf), 64)) if rnd.random() < 0.6 else rnd.randrange(len(buf))
        if op < 0.4:
            buf[at] = rnd.randrange(256)
        elif op < 0.55:
            buf[at] ^= 1 << rnd.randrange(8)
        elif op < 0.7:
            buf[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
        elif op < 0.8:
            del buf[at : at + rnd.randint(1, 16)]
        elif op < 0.9:
            del buf[rnd.randrange(len(buf)) :]
        else:  # a big number where sizes usually are
            buf[at : at + 4] = rnd.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff"])
    return bytes(buf)


def image_case(rnd: random.Random) -> tuple[bytes, int | None]:
    seed = rnd.choice(SEED_IMAGES)
    data = seed if rnd.random() < 0.05 else mutate(rnd, seed)
    if rnd.random() < 0.03:
        data = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 64)))
    return data, rnd.choice([None, 8, 32, 224])


_CSV_PIECES = [
    '"', '""', ",", ";", "\t", "\n", "\r\n", "\r", " ", "\x00", "é", "☕", "\ufeff",
    "image", "id", "title", "one.jpg", "sub/two.png", "../../etc/passwd", "/abs/x.tif",
    "http://127.0.0.1:9/x.jpg", "https://example.org/iiif/1/full/!200,200/0/default.jpg",
    "file:///etc/passwd", "ftp://x/y.jpg", "data:image/png;base64,AAAA", "year", "1650", "x" * 300,
]  # fmt: skip


def csv_case(rnd: random.Random) -> tuple[bytes, str | None]:
    columns = rnd.sample(["id", "image", "title", "artist", "year", "Image", " image"], 3)
    if rnd.random() < 0.9 and "image" not in columns:
        columns[0] = "image"
    lines = [",".join(columns)]
    for _ in range(rnd.randint(0, 8)):
        if rnd.random() < 0.7:
            fields = [rnd.choice(["one.jpg", "two.png", "http://127.0.0.1:9/a.jpg", ""])]
            fields += [
                "".join(rnd.choice(_CSV_PIECES) for _ in range(rnd.randint(0, 3)))
                for _ in range(len(columns) - 1)
            ]
            rnd.shuffle(fields)
            lines.append(",".join(fields))
        else:
            lines.append("".join(rnd.choice(_CSV_PIECES) for _ in range(rnd.randint(0, 12))))
    text = "\n".join(lines) + rnd.choice(["\n", "", "\r\n"])
    codec = rnd.choice(["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"])
    data = text.encode(codec, errors="replace")
    if rnd.random() < 0.2:
        data = mutate(rnd, data)
    encoding = rnd.choice([None, None, None, "auto", "utf-8", "cp1252", "latin-1", "nope"])
    return data, encoding


_TOML_KEYS = {
    "collection": ["name", "delimiter", "encoding", "year_from_date", "bogus"],
    "columns": ["id", "title", "artist", "date", "year", "year_end", "classification", "x"],
    "lists": ["style", "theme", "school"],
    "image": ["url", "iiif_base", "iiif_prefix", "iiif_size", "local_dir", "local_name"],
    "filter": ["column", "values"],
    "extra": ["inventory", "title", "id"],
    "nonsense": ["a"],
}
_TOML_VALUES = [
    '"inv"', '"Title"', '"Image"', '"Type"', '""', '" "', "1", "-5", "0", "1e309", "true",
    '["painting"]', "[]", "[1, 2]", '{ column = "Tags", separator = ";" }', '{ column = 3 }',
    '"cp1252"', '"auto"', '"klingon"', '";"', '",,"', '"../../etc"', '"{id}.jpg"', '"{nope}"',
    '"https://iiif.example.org/"', "1024", "999999999", '"\\u00e9"', "{ }", '"a\\nb"',
]  # fmt: skip

MAPPING_CSV = (
    "inv,Title,Painter,Date,Type,Tags,Image\n"
    "A1,Harbour,Ada,1871,painting,sea;boats,https://img.example.org/a1.jpg\n"
    "A2,Orchard,Bo,c. 1880,painting,,https://img.example.org/a2.jpg\n"
    'A3,"Broken,only\n'
)


def toml_case(rnd: random.Random) -> str:
    tables: dict[str, list[str]] = {}
    if rnd.random() < 0.7:  # usually a working core, so the CSV side gets exercised too
        tables = {"columns": ['id = "inv"', 'title = "Title"'], "image": ['url = "Image"']}
    for table in rnd.sample(list(_TOML_KEYS), rnd.randint(0, 5)):
        keys = _TOML_KEYS[table]
        for key in rnd.sample(keys, rnd.randint(0, min(3, len(keys)))):
            lines = tables.setdefault(table, [])
            lines[:] = [line for line in lines if not line.startswith(f"{key} =")]
            lines.append(f"{key} = {rnd.choice(_TOML_VALUES)}")
    text = "".join(f"[{t}]\n" + "".join(f"{line}\n" for line in v) for t, v in tables.items())
    if rnd.random() < 0.15:
        text = mutate(rnd, text.encode()).decode("utf-8", errors="replace")
    return text


_WHERE_PIECES = [
    "year", "year_end", "artist", "title", "style", "x.y", "_", "1", "=", "==", "!=", ">=",
    "<=", ">", "<", "..", "...", ";", " ", "1600", "-3", "1e5", "12abc", "abc", "nan", "inf",
    "é", "\x00", "%", "*", "'", '"', "(", "0x10", "1.5.5", "--", "\n",
]  # fmt: skip
_METADATA = [
    {"title": "Study", "artist": "Ada Maler", "year": 1650, "year_end": 1660},
    {"title": "Harbour", "artist": ["Bo", "Cy"], "year": "c. 1880", "style": ["Baroque"]},
    {"year": None, "artist": ""},
    {},
]


_OPS = ["=", "==", "!=", ">=", "<=", ">", "<"]


def where_case(rnd: random.Random) -> list[str]:
    clauses = []
    for _ in range(rnd.randint(1, 3)):
        if rnd.random() < 0.7:  # FIELD OP VALUE, the value made of pieces
            value = "".join(rnd.choice(_WHERE_PIECES[15:]) for _ in range(rnd.randint(1, 3)))
            clauses.append(f"{rnd.choice(_WHERE_PIECES[:6])}{rnd.choice(_OPS)}{value}")
        else:
            clauses.append("".join(rnd.choice(_WHERE_PIECES) for _ in range(rnd.randint(0, 6))))
    return clauses


# ---------------------------------------------------------------------- targets


def check_image(rnd: random.Random) -> str:
    data, max_side = image_case(rnd)
    try:
        loaded = open_image(data, max_side=max_side, max_pixels=4_000_000)
    except ImageLoadError:
        return "refused"
    assert loaded.image.mode == "RGB" and min(loaded.image.size) >= 1
    assert min(loaded.original_size) >= 1
    if max_side:
        assert max(loaded.image.size) <= 2 * max_side
    return "ok"


def check_csv(rnd: random.Random, folder: Path) -> str:
    data, encoding = csv_case(rnd)
    path = folder / "fuzz.csv"
    path.write_bytes(data)
    try:
        scan = scan_csv(path, encoding=encoding)
    except SourceError:
        return "refused"
    ids = [it.id for it in scan.items]
    assert len(ids) == len(set(ids)) and all(ids)
    assert all(it.image for it in scan.items)
    assert all(p.where.startswith(str(path)) for p in scan.problems)
    return "ok"


def check_mapping(rnd: random.Random, folder: Path) -> str:
    toml_path = folder / "fuzz.toml"
    toml_path.write_text(toml_case(rnd), encoding="utf-8")
    csv_path = folder / "collection.csv"
    if not csv_path.exists():
        csv_path.write_text(MAPPING_CSV, encoding="utf-8")
    try:
        load_mapping(toml_path)
        scan = scan_mapped_csv(csv_path, toml_path)
    except SourceError:
        return "refused"
    ids = [it.id for it in scan.items]
    assert len(ids) == len(set(ids))
    return "ok"


def check_where(rnd: random.Random) -> str:
    clauses = where_case(rnd)
    try:
        conditions = parse_where(clauses if rnd.random() < 0.8 else ";".join(clauses))
    except ArtsimError:
        return "refused"
    mask = filter_mask(_METADATA, conditions)
    assert mask is None or mask.shape == (len(_METADATA),)
    return "ok"


# ---------------------------------------------------------------------- HTTP

FUZZ_IDS = ["img0.jpg", "sub/img1.jpg", "img2.jpg", "img3.jpg", "img4.jpg", "img5.jpg"]


def make_fuzz_catalog(root: Path) -> Path:
    """Six generated paintings with metadata (global aspect): what the HTTP fuzzer serves."""
    from artsim.catalog import Catalog
    from artsim.records import SourceItem

    (root / "src" / "sub").mkdir(parents=True, exist_ok=True)
    items = []
    for i, item_id in enumerate(FUZZ_IDS):
        path = root / "src" / item_id
        gradient(96 + 8 * i, 72, seed=i).save(path, quality=90)
        meta = {"title": f"Study {i}", "artist": ["Ada", "Bo", "Cy"][i % 3], "year": 1600 + i}
        items.append(SourceItem(item_id, str(path), meta))
    Catalog.create(root / "cat").add(items)
    return root / "cat"


def catalog_snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """Every catalog file but the caches: name -> (size, mtime); requests must not change it."""
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
        if p.is_file() and "cache" not in p.relative_to(path).parts
    }


_PARAM_NAMES = [
    "id", "k", "aspect", "where", "weights", "mirror", "face", "figure", "min_score", "box",
    "identity", "offset", "limit", "size", "url", "q", "",
]  # fmt: skip
_PARAM_VALUES = [
    "img0.jpg", "sub/img1.jpg", "sub%2Fimg1.jpg", "nope", "", "0", "1", "-1", "12", "501",
    "99999999999999999999", "1e3", "nan", "inf", "-inf", "true", "false", "yes", "2",
    "global", "face", "pose", "fused", "GLOBAL", "global=1,face=2", "global=x", "face=-1",
    "=1", "1,2,3,4", "1,2,-3,4", "nan,1,1,1", "0,0,0,0", "year>=1600", "year=1600..1650",
    "year>=12abc", "artist=ada;year<1603", "title=Wait...", "artist==", "..", "x" * 2000,
    "../../etc/passwd", "file:///etc/passwd", "http://127.0.0.1:1/x.jpg", "é☕", "\x00", "%00",
]  # fmt: skip


def http_case(rnd: random.Random) -> tuple[str, str, list[tuple[str, str]], bytes | None]:
    route = rnd.choice(
        ["search", "search", "items", "item", "thumbnail", "facets", "info", "upload", "upload"]
    )
    params = [
        (rnd.choice(_PARAM_NAMES), rnd.choice(_PARAM_VALUES)) for _ in range(rnd.randint(0, 5))
    ]
    if rnd.random() < 0.3:
        params += [("where", clause) for clause in where_case(rnd)]
    item = rnd.choice([*FUZZ_IDS, *_PARAM_VALUES[:8]])
    if route == "search":
        if rnd.random() < 0.8:
            params.insert(0, ("id", rnd.choice(FUZZ_IDS)))
        return "GET", "/api/search", params, None
    if route == "items":
        return "GET", "/api/items", params, None
    if route == "item":
        return "GET", f"/api/items/{item}", params, None
    if route == "thumbnail":
        return "GET", f"/api/items/{item}/thumbnail", params, None
    if route == "upload":
        data, _ = image_case(rnd)
        return "POST", "/api/search", params, data
    return "GET", f"/api/{route}", params, None


def check_http(rnd: random.Random, client: Any, catalog: Path, before: dict) -> str:
    method, url, params, data = http_case(rnd)
    if method == "GET":
        response = client.get(url, params=params)
    else:
        form = dict(params[:3]) if rnd.random() < 0.5 else None
        files = {"image": ("x.jpg", data, "image/jpeg")} if rnd.random() < 0.9 else None
        response = client.post(url, params=params[3:], data=form, files=files)
    assert response.status_code < 500, (
        f"{method} {url} params={params!r} -> {response.status_code} {response.text[:300]}"
    )
    assert catalog_snapshot(catalog) == before, "a request changed the catalog"
    return "refused" if response.status_code >= 400 else "ok"


def http_client(catalog: Path):
    """A TestClient on the catalog; uploads analysed in the server's threads (no workers)."""
    from fastapi.testclient import TestClient

    from artsim.catalog import Catalog
    from artsim.server.app import create_app

    app = create_app(catalog, catalog=Catalog.open(catalog))
    return TestClient(app, raise_server_exceptions=False)


TARGETS: dict[str, Callable[..., str]] = {
    "image": check_image,
    "csv": check_csv,
    "mapping": check_mapping,
    "where": check_where,
    "http": check_http,
}


# ---------------------------------------------------------------------- tests


@FUZZ
@given(RANDOMS)
def test_fuzz_image_bytes(rnd):
    check_image(rnd)


@FUZZ
@given(RANDOMS)
def test_fuzz_csv_manifest(tmp_path, rnd):
    check_csv(rnd, tmp_path)


@FUZZ
@given(RANDOMS)
def test_fuzz_toml_mapping(tmp_path, rnd):
    check_mapping(rnd, tmp_path)


@FUZZ
@given(RANDOMS)
def test_fuzz_where_expressions(rnd):
    check_where(rnd)


@pytest.fixture(scope="module")
def fuzz_catalog(tmp_path_factory) -> Path:
    return make_fuzz_catalog(tmp_path_factory.mktemp("fuzzcat"))


@pytest.fixture(scope="module")
def fuzz_client(fuzz_catalog):
    with http_client(fuzz_catalog) as client:
        yield client


@settings(FUZZ, max_examples=100)
@given(RANDOMS)
def test_fuzz_http_parameters(fuzz_client, fuzz_catalog, rnd):
    check_http(rnd, fuzz_client, fuzz_catalog, catalog_snapshot(fuzz_catalog))


def test_fuzz_targets_reach_both_outcomes(tmp_path):
    """The generators are not degenerate: each target both accepts and refuses some cases."""
    for name, target in [("image", check_image), ("csv", check_csv), ("mapping", check_mapping)]:
        seen = set()
        for i in range(200):
            rnd = random.Random(i)
            seen.add(target(rnd) if name == "image" else target(rnd, tmp_path))
            if seen == {"ok", "refused"}:
                break
        assert seen == {"ok", "refused"}, name


def test_nul_characters_found_by_the_fuzzer_are_clear_errors(tmp_path):
    # a NUL in a manifest's image path was a ValueError traceback from Path.resolve/open
    (tmp_path / "m.csv").write_text("id,image\na,one\x00.jpg\nb,two.jpg\n")
    scan = scan_csv(tmp_path / "m.csv")
    assert [it.id for it in scan.items] == ["b"]
    assert "NUL character" in scan.problems[0].reason and scan.problems[0].where.endswith(":2")
    with pytest.raises(ImageLoadError, match="not a valid file path"):
        open_image(str(tmp_path / "one\x00.jpg"))


@pytest.mark.parametrize("clause", ["year>=12abc", "year<1e51e5", "year>0x10"])
def test_where_cases_found_by_the_fuzzer(clause):
    try:
        conditions = parse_where([clause])
    except ArtsimError:
        return  # refusing it with a clear message is the fix
    assert filter_mask(_METADATA, conditions).shape == (len(_METADATA),)
