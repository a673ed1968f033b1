from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from artsim.errors import ImageLoadError
from artsim.images import open_image
from tests.images_factory import gradient, write_awkward_set


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    return write_awkward_set(tmp_path_factory.mktemp("awkward"))


@pytest.mark.parametrize(
    "name",
    [
        "ok.jpg",
        "cmyk.jpg",
        "gray16.png",
        "alpha.png",
        "palette.png",
        "gray.tif",
        "webp.webp",
        "bmp.bmp",
    ],
)
def test_every_mode_becomes_rgb(awkward, name):
    loaded = open_image(awkward[name])
    assert loaded.image.mode == "RGB"
    assert loaded.image.size == loaded.original_size


def test_16bit_is_scaled_not_clipped(awkward):
    arr = np.asarray(open_image(awkward["gray16.png"]).image)
    # a full-range ramp must stay a ramp: dark at the top, bright at the bottom, no saturation plateau
    assert arr[0].mean() < 10 and arr[-1].mean() > 245
    assert (arr[:, :, 0] == 255).mean() < 0.05


def test_alpha_is_composited_on_white(awkward):
    arr = np.asarray(open_image(awkward["alpha.png"]).image).astype(int)
    src = np.asarray(gradient(64, 64, 3)).astype(int)
    assert np.abs(arr - (src * 128 + 255 * 127) // 255).max() <= 2


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("empty.jpg", "empty file"),
        ("truncated.jpg", "truncated"),
        ("corrupt.png", "corrupt.png"),
        ("notes.jpg", "not an image"),
        ("bomb.png", "decompression bomb"),
    ],
)
def test_bad_files_raise_clear_errors(awkward, name, needle):
    with pytest.raises(ImageLoadError) as exc:
        open_image(awkward[name])
    assert needle in str(exc.value)
    assert name in str(exc.value)


def test_pixel_limit_is_configurable(awkward):
    with pytest.raises(ImageLoadError, match="max-pixels"):
        open_image(awkward["ok.jpg"], max_pixels=100)


def test_missing_file():
    with pytest.raises(ImageLoadError, match="cannot open"):
        open_image("/nonexistent/x.jpg")


def test_exif_orientation_is_applied(tmp_path):
    im = gradient(80, 40, 9)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif.tobytes(), quality=95)
    loaded = open_image(path)
    assert loaded.image.size == (40, 80)
    assert loaded.original_size == (40, 80)


def test_large_jpeg_decoded_at_reduced_size(tmp_path):
    path = tmp_path / "big.jpg"
    gradient(4000, 3000, 10).save(path, quality=85)
    loaded = open_image(path, max_side=260)
    # draft mode decodes at 1/8 scale (500x375); never below what was asked for
    assert max(loaded.image.size) <= 520
    assert min(loaded.image.size) >= 260
    assert loaded.original_size == (4000, 3000)
    assert loaded.scale == pytest.approx(4000 / loaded.image.width)


def test_bytes_input():
    buf = io.BytesIO()
    gradient().save(buf, "PNG")
    assert open_image(buf.getvalue()).image.size == (64, 48)
