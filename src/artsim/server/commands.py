"""CLI commands for the web server and the pictures: `artsim serve`, `artsim sheet`, `artsim map`.

cli.py calls `register(app)`; only typer is imported here at module level so that
`artsim --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

CatalogArg = Annotated[
    Path, typer.Argument(help="Catalog folder (made by `artsim index`).", show_default=False)
]


def register(app: typer.Typer) -> None:
    """Add the serve, sheet and map commands to the artsim CLI."""
    app.command("serve")(serve)
    app.command("sheet")(sheet)
    app.command("map")(map_command)


def serve(
    catalog: CatalogArg,
    host: Annotated[
        str,
        typer.Option(
            help="Interface to bind. Keep 127.0.0.1 unless you mean to publish the server."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            help="Allow browser pages from this origin (repeatable), e.g. https://example.org. Off by default.",
        ),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option(min=0.1, help="Largest accepted upload, in MB.")
    ] = 20.0,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="Refuse uploads that decode to more pixels than this.")
    ] = 50_000_000,  # app.DEFAULT_MAX_PIXELS: a phone's 48-megapixel photo
    allowed_hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-hosts",
            help="Host names the server answers (repeatable or comma-separated); requests naming "
            "another host get 400, against DNS rebinding. Default: localhost, 127.0.0.1 and ::1 "
            "when bound to a loopback address, else any. '*' allows any.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the web page and HTTP API for a catalog (http://127.0.0.1:8000 by default)."""
    import uvicorn

    from artsim.server.app import create_app

    hosts = allowed_host_names(host, allowed_hosts)
    application = create_app(
        catalog,
        max_upload_bytes=int(max_upload_mb * 1_000_000),
        max_pixels=max_pixels,
        cors_origins=cors_origin or None,
        allowed_hosts=hosts,
        warm=True,
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"warning: binding {host}: the server is reachable from other machines"
            + ("" if hosts else "; name its public host with --allowed-hosts"),
            err=True,
        )
    typer.echo(
        f"artsim: serving {catalog} on http://{host}:{port}/  (API reference: /docs)", err=True
    )
    uvicorn.run(application, host=host, port=port, log_level=log_level)


def allowed_host_names(bind: str, given: list[str] | None) -> list[str] | None:
    """--allowed-hosts as a list for create_app (None: any host)."""
    from artsim.server.middleware import default_allowed_hosts

    names = [n.strip() for item in given or [] for n in item.split(",") if n.strip()]
    if not names:
        return default_allowed_hosts(bind)
    return None if "*" in names else names


def sheet(
    catalog: CatalogArg,
    query: Annotated[str, typer.Argument(help="A catalog id, an image file, or an http(s) URL.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="PNG file to write.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=100, help="Number of results.")] = 8,
    aspect: Annotated[
        str, typer.Option(help="global (overall look), face, pose or fused.")
    ] = "global",
    where: Annotated[
        list[str] | None, typer.Option("--where", "-w", help="Metadata filter, repeatable.")
    ] = None,
    columns: Annotated[int, typer.Option(min=1, max=20, help="Tiles per row.")] = 5,
    thumb: Annotated[int, typer.Option(min=64, max=1024, help="Tile size in pixels.")] = 240,
    mirror: Annotated[
        bool, typer.Option(help="With --aspect pose: also match mirrored poses.")
    ] = False,
) -> None:
    """Draw a contact sheet: the query and its best matches with scores, boxes and skeletons."""
    from artsim.catalog import Catalog
    from artsim.search import resolve_query
    from artsim.search.options import OptionError, SearchOptions
    from artsim.visualize.sheets import contact_sheet

    try:
        opts = SearchOptions.parse(aspect=aspect, k=k, where=where, mirror=mirror, strict=True)
    except OptionError as exc:
        typer.echo(f"artsim: error: {exc}", err=True)
        raise typer.Exit(2) from None
    cat = Catalog.open(catalog)
    q = resolve_query(cat, query)
    results = cat.search(
        q, k=opts.k, aspect=opts.aspect, where=list(opts.where), **opts.aspect_options()
    )
    query_image = q.item_id if q.item_id is not None else q.source
    label = f"{query}: {len(results)} matches by {aspect}"
    contact_sheet(
        query_image, results, cat, out_path=out, columns=columns, thumb=thumb, title=label
    )
    typer.echo(f"wrote {out} ({len(results)} results)")


def map_command(
    catalog: CatalogArg,
    out: Annotated[
        Path,
        typer.Option(
            "-o", "--out", help="map.png (static) or map.html (interactive, self-contained)."
        ),
    ],
    method: Annotated[
        str, typer.Option(help="auto (t-SNE, PCA below 30 paintings), tsne or pca.")
    ] = "auto",
    thumb: Annotated[
        int | None,
        typer.Option(
            min=16, max=256, help="Thumbnail size in pixels (default: by collection size)."
        ),
    ] = None,
) -> None:
    """Draw the whole collection on a 2-D map where similar paintings sit together."""
    from artsim.catalog import Catalog
    from artsim.visualize.maps import collection_map

    cat = Catalog.open(catalog)
    path = collection_map(cat, out, method=method, thumb_size=thumb)
    typer.echo(f"wrote {path} ({len(cat)} paintings)")
