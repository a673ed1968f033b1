from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artsim.errors import ImageLoadError
from artsim.images import allow_pixels, fit_side, open_image
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


# --- issue 16 ---


def test_12bit_scan_in_16bit_file_is_stretched_not_near_black(tmp_path):
    ramp = np.tile(np.linspace(0, 4095, 64).astype(np.uint16)[:, None], (1, 48))
    Image.fromarray(ramp).save(tmp_path / "scan12.png")  # mode I;16
    arr = np.asarray(open_image(tmp_path / "scan12.png").image).astype(int)
    assert arr[0].max() <= 5 and arr[-1].min() >= 250  # the whole 0..255 range is used
    assert np.all(np.diff(arr[:, 0, 0]) >= 0)  # still a ramp


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "JPEG"])
def test_max_pixels_governs_over_pillows_own_cap(tmp_path, monkeypatch, fmt):
    path = tmp_path / f"big.{fmt.lower()}"
    gradient(80, 60).save(path, fmt)  # 4,800 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses over 2,000
    if fmt == "TIFF":  # Pillow checks a TIFF's tiles on load: only its own cap can allow them
        with pytest.raises(ImageLoadError, match=r"Pillow's own limit of 2,000 pixels"):
            open_image(path, max_pixels=10_000)
        allow_pixels(10_000)  # what `artsim index --max-pixels 10000` does at start-up
        assert Image.MAX_IMAGE_PIXELS == 10_000
    loaded = open_image(path, max_pixels=10_000)
    assert loaded.original_size == (80, 60) and loaded.image.mode == "RGB"
    expected_cap = 10_000 if fmt == "TIFF" else 1000
    assert expected_cap == Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageLoadError, match=r"over the limit of 3,000.*raise --max-pixels"):
        open_image(path, max_pixels=3000)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decoding_past_pillows_cap_leaves_the_cap_alone_for_other_threads(tmp_path, monkeypatch):
    # review of issue 16: the cap was raised process-wide (under a lock) during such a decode,
    # so any other thread's Image.open ran without Pillow's bomb check meanwhile
    import threading

    import artsim.images as images

    path = tmp_path / "big.png"
    gradient(80, 60).save(path)  # 4,800 pixels, over Pillow's 2,000 below
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    inside, release = threading.Event(), threading.Event()
    to_rgb = images._to_rgb

    def slow_to_rgb(im):  # hold the big decode open while this thread looks at the cap
        inside.set()
        release.wait(10)
        return to_rgb(im)

    monkeypatch.setattr(images, "_to_rgb", slow_to_rgb)
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(loaded=open_image(path, max_pixels=10_000))
    )
    worker.start()
    try:
        assert inside.wait(10)
        assert Image.MAX_IMAGE_PIXELS == 1000  # unchanged while the big image decodes
        with pytest.raises(Image.DecompressionBombError):  # so Pillow still guards the rest
            Image.open(path)
    finally:
        release.set()
        worker.join(10)
    assert result["loaded"].original_size == (80, 60)


def test_large_png_is_reduced_in_its_own_mode_like_a_thumbnail(tmp_path):
    src = gradient(3000, 2000)
    src.putalpha(255)
    src.save(tmp_path / "big.png")
    loaded = open_image(tmp_path / "big.png", max_side=224)
    assert loaded.original_size == (3000, 2000) and loaded.image.size == (448, 299)
    expected = src.convert("RGB")
    expected.thumbnail((448, 448), Image.Resampling.BILINEAR, reducing_gap=2.0)
    diff = np.abs(np.asarray(loaded.image, int) - np.asarray(expected, int))
    assert diff.mean() < 1.0 and diff.max() <= 8


def test_orientation_is_applied_after_the_reduction(tmp_path):
    src = gradient(1200, 400)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: shown 400 wide, 1200 tall
    src.save(tmp_path / "rot.png", exif=exif)
    loaded = open_image(tmp_path / "rot.png", max_side=64)
    assert loaded.original_size == (400, 1200)
    assert loaded.image.height == 128 and loaded.image.width in (42, 43)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_named_like_an_image_is_refused_not_waited_on(tmp_path):
    # review of issue 16: open() of a FIFO blocks until a writer comes, so one `mkfifo x.jpg`
    # in a folder hung `artsim index` for good
    import threading

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    outcome: list[BaseException | object] = []

    def load() -> None:
        try:
            outcome.append(open_image(fifo))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # blocked in open(): let it go, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail("open_image waited on a named pipe")
    assert isinstance(outcome[0], ImageLoadError)
    assert "pipe.jpg: cannot open (not a regular file (a pipe, socket or device))" in str(
        outcome[0]
    )


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_is_refused_with_a_reason(tmp_path):
    with pytest.raises(ImageLoadError, match=r"/dev/zero: cannot open \(not a regular file"):
        open_image("/dev/zero")
    with pytest.raises(ImageLoadError, match=r"cannot open \(not a regular file \(a folder\)\)"):
        open_image(tmp_path)


# --- phone photos: HEIC/HEIF and AVIF ---


def _two_colour(width: int = 120, height: int = 80) -> Image.Image:
    from artsim.images import register_heif

    assert register_heif()  # pillow-heif saves the test's HEIC files too
    im = Image.new("RGB", (width, height), (200, 40, 40))
    im.paste((40, 40, 200), (0, 0, width // 2, height // 2))  # blue top-left quarter
    return im


def _no_avif() -> bool:
    from PIL import features

    return not features.check("avif")


@pytest.mark.parametrize(
    "fmt",
    [
        "HEIF",
        pytest.param(
            "AVIF", marks=pytest.mark.skipif(_no_avif(), reason="Pillow built without AVIF")
        ),
    ],
)
def test_phone_formats_decode_with_their_colours(tmp_path, fmt):
    from artsim.images import IMAGE_EXTENSIONS, is_image_path, register_heif

    assert register_heif()
    path = tmp_path / f"photo.{'heic' if fmt == 'HEIF' else 'avif'}"
    _two_colour().save(path, fmt, quality=90)
    assert is_image_path(path) and path.suffix in IMAGE_EXTENSIONS
    loaded = open_image(path)
    assert loaded.image.mode == "RGB" and loaded.image.size == (120, 80)
    arr = np.asarray(loaded.image).astype(int)
    assert np.abs(arr[10, 10] - (40, 40, 200)).max() < 25  # lossy, but the same colours
    assert np.abs(arr[60, 100] - (200, 40, 40)).max() < 25
    assert open_image(path.read_bytes()).image.size == (120, 80)  # an upload's bytes too


def test_a_rotated_heic_photo_is_turned_once(tmp_path):
    # phones store the camera's rotation; pillow-heif turns the pixels and resets the EXIF
    # orientation, so applying EXIF again would turn a portrait photo back on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "IMG_0001.HEIC"
    _two_colour().save(path, "HEIF", quality=90, exif=exif.tobytes())
    loaded = open_image(path, max_side=64)
    assert loaded.original_size == (80, 120)
    assert loaded.image.size == (80, 120)  # under twice max_side: not shrunk
    arr = np.asarray(loaded.image).astype(int)
    h, w = arr.shape[:2]
    # clockwise: the blue top-left quarter is now the top-right one
    assert np.abs(arr[h // 8, w - 1 - w // 8] - (40, 40, 200)).max() < 30
    assert np.abs(arr[h // 8, w // 8] - (200, 40, 40)).max() < 30


def test_a_truncated_heic_names_the_file(tmp_path):
    path = tmp_path / "cut.heic"
    buf = io.BytesIO()
    _two_colour().save(buf, "HEIF", quality=90)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match=r"cut\.heic: corrupt or truncated HEIC"):
        open_image(path)


def test_heic_without_pillow_heif_says_what_to_install(tmp_path, monkeypatch):
    import artsim.images as images

    buf = io.BytesIO()
    _two_colour().save(buf, "HEIF", quality=90)
    head = buf.getvalue()[:16]
    assert images.looks_like_heif(head)
    assert not images.looks_like_heif(b"\xff\xd8\xff\xe0" + bytes(12))  # a JPEG
    # a process where pillow-heif is missing: no HEIF opener registered, register_heif False
    monkeypatch.setattr(images, "register_heif", lambda: False)
    monkeypatch.setattr(Image, "open", _refuse_heif(Image.open))
    path = tmp_path / "IMG_0002.heic"
    path.write_bytes(buf.getvalue())
    with pytest.raises(
        ImageLoadError,
        match=r"IMG_0002\.heic: a HEIC image, and pillow-heif is not installed: pip install",
    ):
        open_image(path)


def _refuse_heif(real_open):
    from PIL import UnidentifiedImageError

    def fake_open(fp, *args, **kwargs):
        head = fp.read(16)
        fp.seek(0)
        if head[4:8] == b"ftyp":
            raise UnidentifiedImageError("cannot identify image file")
        return real_open(fp, *args, **kwargs)

    return fake_open


def test_pillows_own_avif_reader_comes_before_pillow_heif():
    # pillow-heif's wheels decode no AV1: an AVIF file it claimed would fail to decode
    import subprocess
    import sys

    code = (
        "from artsim.images import register_heif; from PIL import Image; "
        "assert register_heif(); print(Image.ID.index('AVIF') < Image.ID.index('HEIF'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_a_broken_pillow_heif_leaves_the_other_formats_readable(tmp_path, monkeypatch):
    import sys
    import types

    import artsim.images as images

    def broken(**kwargs):
        raise ImportError("libheif.so: cannot open shared object file")

    monkeypatch.setitem(
        sys.modules, "pillow_heif", types.SimpleNamespace(register_heif_opener=broken)
    )
    images.register_heif.cache_clear()
    try:
        assert images.register_heif() is False
        path = tmp_path / "ok.jpg"
        gradient(40, 30).save(path, quality=90)
        assert open_image(path).image.size == (40, 30)
    finally:
        images.register_heif.cache_clear()


def test_fit_side_leaves_an_image_that_fits_as_it_is() -> None:
    im = gradient(300, 200)
    out, scale = fit_side(im, 300)
    assert out is im and scale == 1.0


def test_fit_side_scales_the_long_side_down_with_the_callers_filter() -> None:
    im = gradient(1000, 300)
    out, scale = fit_side(im, 320, Image.Resampling.LANCZOS)
    assert out.size == (320, 96) and scale == pytest.approx(0.32)
    want = im.resize((320, 96), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(out), np.asarray(want))
    # a thin strip keeps at least one pixel across
    strip, _ = fit_side(gradient(5000, 3), 100)
    assert strip.size == (100, 1)
