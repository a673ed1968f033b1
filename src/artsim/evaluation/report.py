"""Write an evaluation run as JSON, a Markdown report and a bar chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HEADLINE = {
    "instance": ("recall@1", "recall@5", "ap"),
    "instance-distorted": ("recall@1", "recall@5", "ap"),
    "instance-framed": ("recall@1", "recall@5", "ap"),
    "instance-framed-two": ("both@2",),
    "instance-gallery": ("recall@1", "recall@5", "ap"),
    "instance-gallery-two": ("both@2",),
    "artist": ("precision@10", "ap@10"),
    "sitter": ("hit@1", "hit@5", "ap"),
}
TITLES = {
    "instance": "Instance retrieval (same painting, another rendering)",
    "instance-distorted": "Instance retrieval, queries distorted like web photos (mild)",
    "instance-framed": "Instance retrieval, framed photos on a wall (first painting of each photo)",
    "instance-framed-two": "Framed photos of two paintings: both in the top 2",
    "instance-gallery": "Instance retrieval, harsher gallery photos (smaller, cut off, occluded, "
    "uneven light, shake)",
    "instance-gallery-two": "Gallery photos of two paintings: both in the top 2",
    "artist": "Same artist (leave-one-out, WikiArt)",
    "sitter": "Same sitter (leave-one-out)",
}


def _num(value: Any, missing: float = float("nan")) -> float:
    return missing if value is None else float(value)


def markdown_tables(rows: list[dict[str, Any]]) -> str:
    out = []
    for task, metrics in HEADLINE.items():
        task_rows = [r for r in rows if r["task"] == task]
        if not task_rows:
            continue
        out.append(f"### {TITLES[task]}\n")
        out.append("| aspect | variant | queries | " + " | ".join(metrics) + " |")
        out.append("|---|---|---:|" + "---:|" * len(metrics))
        for r in task_rows:
            vals = " | ".join(f"{_num(r.get(m)):.3f}" for m in metrics)
            out.append(f"| {r['aspect']} | {r['variant']} | {r['queries']} | {vals} |")
        out.append("")
    return "\n".join(out)


def bar_chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        (t, HEADLINE[t][0] if t != "artist" else "ap@10")
        for t in HEADLINE
        if any(r["task"] == t for r in rows)
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (task, metric) in zip(axes[0], panels, strict=True):
        task_rows = [r for r in rows if r["task"] == task]
        labels = [
            r["aspect"] if r["variant"] == "plain" else f"{r['aspect']}\n{r['variant']}"
            for r in task_rows
        ]
        values = [_num(r.get(metric), 0.0) for r in task_rows]
        bars = ax.bar(
            range(len(values)),
            values,
            color=["#4a6fa5" if r["variant"] == "plain" else "#a5a5a5" for r in task_rows],
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_xticks(range(len(values)), labels, fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{task}: {metric}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(run, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = run.to_dict()
    paths = {
        "json": out_dir / "evaluation.json",
        "markdown": out_dir / "evaluation.md",
        "chart": out_dir / "evaluation.png",
    }
    paths["json"].write_text(json.dumps(data, indent=2) + "\n")
    bar_chart(run.rows, paths["chart"])
    md = [
        f"# Evaluation of `{run.catalog}`\n",
        f"Model: `{run.model}`. Missing ground-truth rows (files not in the catalog): "
        + (", ".join(f"{k} {v}" for k, v in run.missing.items()) or "none")
        + ".\n",
        f"![metrics]({paths['chart'].name})\n",
        markdown_tables(run.rows),
    ]
    md += [f"- {n}" for n in run.notes]
    paths["markdown"].write_text("\n".join(md) + "\n")
    return paths
