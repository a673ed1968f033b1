#!/usr/bin/env bash
# A plain `pip install` must give a working artsim (issue 16, item 13): a fresh venv in a temp
# dir, the package installed by pip alone (no Makefile steps, no --no-deps), then a few NGA
# paintings indexed with faces (the default ensemble, MTCNN included), without pkg_resources.
# Usage: .ci/install_check.sh [DATA_DIR]   (default ../shared/data). Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DATA=$(cd "${1:-../shared/data}" && pwd)
PYTHON=${PYTHON:-python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# torch with its CUDA libraries makes the venv about 8 GB; say so before pip fails halfway
need_gb=10
free_gb=$(df -Pk "$TMP" | awk 'NR == 2 {print int($4 / 1048576)}')
if [ "$free_gb" -lt "$need_gb" ]; then
    echo "install-check: only $free_gb GB free in $(dirname "$TMP"); a fresh venv with torch needs" \
        "about $need_gb GB. Free some space there, or set TMPDIR to a larger disk." >&2
    exit 1
fi

start=$SECONDS
"$PYTHON" -m venv "$TMP/venv"
PIP=("$TMP/venv/bin/python" -m pip install -q)
quiet() { grep -v "is ignored: it is neither a file nor a directory" || true; }  # pip.conf noise
# the torch pair that pip takes from this machine's disk (same as the Makefile)
"${PIP[@]}" torch==2.14.1 torchvision==0.29.1 2>&1 | quiet
"${PIP[@]}" "$REPO" 2>&1 | quiet
"$TMP/venv/bin/python" -m pip check
echo "install-check: installed in $((SECONDS - start)) s"

# six paintings, four of them with faces; a folder of links, so that the data stays read-only
mkdir "$TMP/paintings"
for i in 0 1 5 6 20 24; do
    ln -s "$DATA/nga/images/$i.jpg" "$TMP/paintings/$i.jpg"
done
cd "$TMP"  # not the repo: the installed package must be the one imported
# index in this process (detectors too), so that it can check that nothing imported
# pkg_resources, which setuptools>=81 no longer has (face_recognition_models' __init__ needs it)
"$TMP/venv/bin/python" - <<'PY'
import importlib.metadata as md
import sys

from artsim.cli import app

app(
    ["index", "paintings", "--catalog", "cat", "--aspects", "global,face,local", "--detector-workers", "1"],
    standalone_mode=False,
)
assert "pkg_resources" not in sys.modules, "something imported pkg_resources"
print(f"install-check: setuptools {md.version('setuptools')}, facenet-pytorch "
      f"{md.version('facenet-pytorch')}; pkg_resources not imported")
PY
"$TMP/venv/bin/artsim" info cat --json >info.json  # the console script
"$TMP/venv/bin/python" - <<'PY'
import json

info = json.load(open("info.json"))
faces = info["aspects"].get("face", {}).get("count", 0)
local = info["aspects"].get("local", {}).get("items_done", 0)
print(f"install-check: {info['items']} paintings, {faces} faces, {local} with keypoints")
assert info["items"] == 6, info
assert faces >= 3, f"expected faces in the sample portraits, got {faces}"
assert local == 6, f"expected keypoints (the local aspect) for every painting, got {local}"
PY
echo "install-check: passed in $((SECONDS - start)) s"
