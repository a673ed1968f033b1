"""Throughput and peak memory of artsim.sources.nga.scan_nga on a synthetic NGA dump.

Writes objects.csv (150,000 rows by default, NGA's 30 columns, provenance texts of a few
hundred characters, some multi-line) and side tables of realistic proportions
(published_images ~1.1 rows per object, objects_terms ~4, objects_constituents ~2.5,
constituents 20,000) to a temp folder, then scans it in a fresh child process per setting so
that each peak RSS (resource.getrusage ru_maxrss) is its own.

    .venv/bin/python benchmarks/bench_nga_reader.py [--rows 150000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OBJECT_COLUMNS = [
    "objectid", "accessioned", "accessionnum", "locationid", "title", "displaydate",
    "beginyear", "endyear", "visualbrowsertimespan", "medium", "dimensions", "inscription",
    "markings", "attributioninverted", "attribution", "provenancetext", "creditline",
    "classification", "subclassification", "visualbrowserclassification", "parentid",
    "isvirtual", "departmentabbr", "portfolio", "series", "volume", "watermarks",
    "lastdetectedmodification", "wikidataid", "customprinturl",
]  # fmt: skip
IMAGE_COLUMNS = [
    "uuid", "iiifurl", "iiifthumburl", "viewtype", "sequence", "width", "height", "maxpixels",
    "created", "modified", "depictstmsobjectid", "assistivetext",
]  # fmt: skip
# roughly NGA's mix: prints and drawings dominate, paintings are a few percent
CLASSIFICATIONS = [
    ("Print", 0.62), ("Drawing", 0.17), ("Photograph", 0.10), ("Painting", 0.03),
    ("Sculpture", 0.03), ("Decorative Art", 0.02), ("Volume", 0.01), ("", 0.02),
]  # fmt: skip
TECHNIQUES = ["painted surface", "etching", "lithograph", "gelatin silver print", "engraving"]
PROVENANCE = (
    "sold to the dealer by whom sold to purchased by gift to the collection of his widow "
    "by inheritance to their son Paris London New York Florence Venice exhibited"
)
WORDS = PROVENANCE.split(" ")


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def generate(folder: Path, rows: int, seed: int = 0) -> dict[str, int]:
    rng = random.Random(seed)
    names, weights = zip(*CLASSIFICATIONS, strict=True)
    n_people = 20_000
    counts = dict.fromkeys(
        ["objects", "published_images", "objects_terms", "objects_constituents", "constituents"], 0
    )
    with (
        (folder / "objects.csv").open("w", newline="", encoding="utf-8") as fo,
        (folder / "published_images.csv").open("w", newline="", encoding="utf-8") as fi,
        (folder / "objects_terms.csv").open("w", newline="", encoding="utf-8") as ft,
        (folder / "objects_constituents.csv").open("w", newline="", encoding="utf-8") as fc,
    ):
        wo, wi, wt, wc = (csv.writer(f, lineterminator="\n") for f in (fo, fi, ft, fc))
        wo.writerow(OBJECT_COLUMNS)
        wi.writerow(IMAGE_COLUMNS)
        wt.writerow(["termid", "objectid", "termtype", "term", "visualbrowsertheme", "visualbrowserstyle"])  # fmt: skip
        wc.writerow(["objectid", "constituentid", "displayorder", "roletype", "role", "prefix",
                     "suffix", "displaydate", "beginyear", "endyear", "country", "zipcode"])  # fmt: skip
        for oid in range(1, rows + 1):
            cls = rng.choices(names, weights)[0]
            year = rng.randint(1300, 2000)
            provenance = words(rng, rng.randint(20, 250))
            if rng.random() < 0.2:
                provenance += "\n" + words(rng, 30)  # quoted newlines, as in the real file
            row = dict.fromkeys(OBJECT_COLUMNS, "")
            row.update(
                objectid=oid, accessioned=1, accessionnum=f"19{rng.randint(37, 99)}.{oid}.1",
                title=words(rng, rng.randint(2, 8)).title(), displaydate=f"c. {year}",
                beginyear=year, endyear=year + rng.randint(0, 10), medium="oil on canvas",
                dimensions="overall: 50 x 40 cm", inscription=words(rng, 8),
                attribution=f"Artist {oid % n_people}", provenancetext=provenance,
                creditline="Gift of a collector", classification=cls, isvirtual=0,
                departmentabbr="CDC-E", lastdetectedmodification="2024-01-01 00:00:00-05",
            )  # fmt: skip
            wo.writerow(row[c] for c in OBJECT_COLUMNS)
            counts["objects"] += 1
            if rng.random() < 0.9:
                for seq, view in enumerate(["primary"] + ["alternate"] * (rng.random() < 0.2)):
                    uuid = f"{oid:08x}-0000-4000-8000-{seq:012x}"
                    base = f"https://api.nga.gov/iiif/{uuid}"
                    wi.writerow([uuid, base, base + "/full/!200,200/0/default.jpg", view, seq,
                                 3000, 4000, "", "2014-01-01", "2024-01-01", oid, ""])  # fmt: skip
                    counts["published_images"] += 1
            technique = "painted surface" if cls == "Painting" else rng.choice(TECHNIQUES)
            terms = [("Technique", technique), ("Style", "Baroque"), ("School", "Dutch"),
                     ("Theme", rng.choice(["portrait", "landscape", "saints"]))]  # fmt: skip
            for termtype, term in terms:
                wt.writerow([rng.randint(1, 10**6), oid, termtype, term, "", ""])
                counts["objects_terms"] += 1
            links = [(oid % n_people, "artist", "painter"), (n_people + 1, "donor", "donor")]
            if rng.random() < 0.5:
                links.append((n_people + 2, "donor", "source"))
            for order, (cid, roletype, role) in enumerate(links, 1):
                wc.writerow([oid, cid, order, roletype, role, "", "", "", "", "", "", ""])
                counts["objects_constituents"] += 1
    with (folder / "constituents.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["constituentid", "ulanid", "preferreddisplayname", "forwarddisplayname",
                    "lastname", "displaydate", "artistofngaobject", "beginyear", "endyear",
                    "visualbrowsertimespan", "nationality", "visualbrowsernationality",
                    "constituenttype", "wikidataid"])  # fmt: skip
        for cid in range(n_people + 3):
            w.writerow([cid, "", f"Artist, {cid}", f"{cid} Artist", "Artist", "", 1, "", "", "",
                        "Dutch", "Dutch", "individual", ""])  # fmt: skip
            counts["constituents"] += 1
    return counts


def child(folder: str, all_classifications: bool) -> None:
    """Runs in a fresh process: scan once, print JSON with time and peak RSS."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from artsim.sources.nga import scan_nga

    imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    scan = scan_nga(folder, all_classifications=all_classifications)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "items": len(scan.items),
                "problems": len(scan.problems),
                "seconds": seconds,
                "rss_start_kb": before,
                "rss_after_import_kb": imported,
                "rss_peak_kb": peak,  # Linux: kilobytes
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--keep", type=Path, help="write the dump here and keep it")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--all", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.all)
        return

    tmp = None
    if args.keep:
        folder = args.keep
        folder.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="artsim-nga-bench-")
        folder = Path(tmp.name)
    try:
        started = time.perf_counter()
        counts = generate(folder, args.rows)
        print(f"generated in {time.perf_counter() - started:.1f} s in {folder}:")
        for name, n in counts.items():
            size = (folder / f"{name}.csv").stat().st_size / 1e6
            print(f"  {name}.csv: {n:,} rows, {size:.1f} MB")
        print()
        print("| all_classifications | objects rows | items | seconds | rows/s | peak RSS (MB) | RSS after import (MB) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for all_classes in (False, True):
            cmd = [sys.executable, __file__, "--child", str(folder)]
            out = subprocess.run(
                cmd + (["--all"] if all_classes else []),
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"| {all_classes} | {counts['objects']:,} | {r['items']:,} | {r['seconds']:.2f} "
                f"| {counts['objects'] / r['seconds']:,.0f} | {r['rss_peak_kb'] / 1024:.0f} "
                f"| {r['rss_after_import_kb'] / 1024:.0f} |"
            )
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
