"""Photo queries end to end: a framed photo of a real sample painting finds it, verified,
with its outline in the photo; photo="off" keeps the plain global search."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artsim.errors import ArtsimError
from artsim.search.photo import MIN_INLIERS, check_photo_mode


def test_photo_mode_is_auto_or_off() -> None:
    assert check_photo_mode(None) == "auto"
    assert check_photo_mode(False) == "off"
    with pytest.raises(ArtsimError, match="choose auto or off"):
        check_photo_mode("maybe")


@pytest.fixture(scope="module")
def small_catalog(data_dir: Path, tmp_path_factory):
    from artsim.catalog import Catalog

    src = tmp_path_factory.mktemp("paintings")
    for f in sorted((data_dir / "nga" / "images").glob("*.jpg"))[:30]:
        shutil.copy(f, src / f.name)
    cat = Catalog.create(tmp_path_factory.mktemp("cat") / "cat")
    cat.add(src, batch_size=16)
    return Catalog.open(cat.path), src


@pytest.mark.slow
def test_a_framed_photo_finds_its_painting_with_its_outline(small_catalog, tmp_path) -> None:
    from artsim.evaluation.distort import framed_photo
    from artsim.images import load_rgb

    cat, src = small_catalog
    target = sorted(src.glob("*.jpg"))[7]
    photo = framed_photo([load_rgb(target, max_side=1024)], np.random.default_rng(3))
    # saved as a phone would: pixels stored sideways, EXIF orientation 6 to turn them upright
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.image.transpose(Image.Transpose.ROTATE_90).save(path, quality=92, exif=exif)
    hits = cat.search(str(path), k=5)
    assert Path(hits[0].image).name == target.name
    assert hits[0].inliers and hits[0].inliers >= MIN_INLIERS
    err = np.abs(np.asarray(hits[0].quad) - np.asarray(photo.quads[0])).max()
    assert err < 0.05 * max(photo.image.size)  # in the upright photo's pixels
    d = hits[0].to_dict()
    assert len(d["quad"]) == 4 and d["inliers"] == hits[0].inliers
    plain = cat.search(str(path), k=5, photo="off")
    assert all(h.quad is None and h.inliers is None for h in plain)


@pytest.mark.slow
def test_a_plain_image_is_searched_whole_and_tiny_photos_are_refused(small_catalog) -> None:
    from artsim.images import load_rgb

    cat, src = small_catalog
    target = sorted(src.glob("*.jpg"))[3]
    hits = cat.search(load_rgb(target), k=3)  # a clean reproduction: the painting itself
    assert Path(hits[0].image).name == target.name
    with pytest.raises(ArtsimError, match="at least 64 px"):
        cat.search(Image.new("RGB", (40, 40)), k=3)


@pytest.mark.slow
def test_id_queries_never_take_the_photo_path(small_catalog, monkeypatch) -> None:
    """Same-artist and 'more like this' searches by id keep the full vector (issue 13,
    item 4): the photo path is for image queries only."""
    import artsim.search.photo as photo

    cat, _ = small_catalog

    def refuse(*args, **kwargs):
        raise AssertionError("an id query went through search_photo")

    monkeypatch.setattr(photo, "search_photo", refuse)
    hits = cat.search(cat.ids[0], k=3)
    assert hits and all(h.quad is None for h in hits)
