"""Draws docs/img/dataflow.png: the data flow of an index run and of a query (matplotlib).

python docs/img/dataflow.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

STAGE = {"fc": "#eef3fb", "ec": "#3b6bb5"}
SHARED = {"fc": "#fff4d6", "ec": "#c08a00"}  # the analysis stage, shared by both flows
DATA = {"fc": "#f3f3f3", "ec": "#888888"}


def box(ax, x, y, w, h, title, body, style) -> None:
    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", lw=1.4, **style)
    )
    ax.text(x + w / 2, y + h - 0.12, title, ha="center", va="top", fontsize=10.5, weight="bold")
    ax.text(x + w / 2, y + h - 0.42, body, ha="center", va="top", fontsize=8.2, linespacing=1.35)


def arrow(ax, x0, y0, x1, y1, label="") -> None:
    ax.annotate(
        "",
        xy=(x1, y1),
        xytext=(x0, y0),
        arrowprops={"arrowstyle": "-|>", "lw": 1.3, "color": "#333"},
    )
    if label:
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2 + 0.08,
            label,
            ha="center",
            va="bottom",
            fontsize=7.8,
            style="italic",
            color="#333",
        )


# (x, y, w, h, title, body, style) per box; (x0, y0, x1, y1, label) per arrow
INDEX_RUN = {
    "title": "An index run:  artsim index SRC --catalog CAT --aspects global,face,pose,local",
    "boxes": [
        (
            0.0,
            1.0,
            2.1,
            2.0,
            "sources/",
            "folder, CSV, NGA,\nmapped museum CSV,\nIIIF downloads\n\nscan_source()",
            STAGE,
        ),
        (
            2.7,
            1.0,
            2.1,
            2.0,
            "images.py",
            "decode in threads,\nbatch i+1 while\nbatch i is analysed;\nside = decode_side()\n"
            "of the aspects",
            STAGE,
        ),
        (
            5.4,
            0.2,
            3.6,
            3.6,
            "analysis.py",
            "analyse_batch(images, aspects)\n\nglobal: encoder, one batch\nface: detect (ensemble) "
            "→ align\n→ identity (dlib); look: encoder\npose: BlazePose, proposals\nfrom the same "
            "face detection\nlocal: RootSIFT keypoints\n\ndetectors run in worker\nprocesses "
            "(DetectorPool)",
            SHARED,
        ),
        (
            9.6,
            1.0,
            2.3,
            2.0,
            "catalog/ indexers",
            "aspects.py, faces.py,\nposes.py, local.py:\nAnalysis → rows\n(original pixels)",
            STAGE,
        ),
        (
            12.5,
            0.6,
            2.5,
            2.8,
            "CATALOG/ on disk",
            "items/part-*.parquet\nvectors/<aspect>/…\n  (one row per face,\n  figure, painting)\n"
            "index/*.faiss (large)\nfailures.csv",
            DATA,
        ),
    ],
    "arrows": [
        (2.1, 2.0, 2.7, 2.0, "SourceItem"),
        (4.8, 2.0, 5.4, 2.0, "LoadedImage"),
        (9.0, 2.0, 9.6, 2.0, "Analysis"),
        (11.9, 2.0, 12.5, 2.0, "AspectRow"),
    ],
    "note": (12.5, 0.25, "atomic parts: an interrupted run\nleaves a valid catalog and resumes"),
}

QUERY = {
    "title": "A query:  artsim search CAT photo.jpg --aspect fused   "
    "(Python: cat.search, HTTP: /api/search)",
    "boxes": [
        (0.0, 1.0, 2.1, 2.0, "search/__init__",
         "resolve_query():\ncatalog id, file,\nURL (fetched), bytes,\nPIL image → Query", STAGE),
        (2.7, 2.25, 2.7, 1.55, "catalog id",
         "stored vectors, faces\nand figures: no\nimage work at all", DATA),
        (2.7, 0.0, 2.7, 2.0, "Query.analyse()",
         "analysis.py, once for\nevery aspect asked:\none decode, one face\ndetection; photo: "
         "the\npaintings in it", SHARED),
        (6.0, 1.0, 2.9, 2.0, "per aspect",
         "global_.py  faces.py\nposes.py: k-NN over\nthe aspect's rows (FAISS),\nbest row "
         "per painting", STAGE),
        (9.5, 1.0, 2.4, 2.0, "fusion.py, photo.py",
         "z-scored weighted sum\n(fused); a photo's\nshortlist (global +\nkeypoint votes) re-"
         "ranked\nby RootSIFT + RANSAC", STAGE),
        (12.5, 1.0, 2.5, 2.0, "results",
         "SearchResult: id,\nscore, matched face,\nfigure or painting\noutline → CLI, JSON, "
         "web", DATA),
    ],
    "arrows": [
        (2.1, 2.3, 2.7, 3.0, "id"),
        (2.1, 1.7, 2.7, 1.0, "image"),
        (5.4, 3.0, 6.0, 2.4, ""),
        (5.4, 1.0, 6.0, 1.6, "Analysis"),
        (8.9, 2.0, 9.5, 2.0, ""),
        (11.9, 2.0, 12.5, 2.0, ""),
    ],
    "note": (6.0, 0.45,
             "--where filters: a mask inside the search,\nso k results come back when k match"),
}  # fmt: skip


def draw_flow(ax, flow: dict) -> None:
    ax.set_title(flow["title"], loc="left", fontsize=12, weight="bold")
    for x, y, w, h, title, body, style in flow["boxes"]:
        box(ax, x, y, w, h, title, body, style)
    for x0, y0, x1, y1, label in flow["arrows"]:
        arrow(ax, x0, y0, x1, y1, label)
    x, y, text = flow["note"]
    ax.text(x, y, text, fontsize=7.8, color="#555")


def main() -> None:
    fig, axes = plt.subplots(2, 1, figsize=(15.5, 8.6))
    for ax, flow in zip(axes, (INDEX_RUN, QUERY), strict=True):
        ax.set_xlim(-0.2, 15.2)
        ax.set_ylim(-0.2, 4.1)
        ax.axis("off")
        draw_flow(ax, flow)
    fig.text(
        0.01,
        0.005,
        "yellow: the analysis stage, the same code for indexing and queries, so a "
        "stored row and a query vector for the same image are equal",
        fontsize=9,
        color="#7a5a00",
    )
    fig.tight_layout()
    out = Path(__file__).with_suffix(".png")
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
