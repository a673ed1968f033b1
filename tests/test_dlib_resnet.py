"""dlib's face-recognition ResNet read from its .dat file and run in PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from artsim.detectors.faces import _import_dlib, detect_faces, dlib_model_path
from artsim.encoders import dlib_resnet
from artsim.encoders.faces import align_faces
from artsim.images import load_rgb
from tests.images_factory import gradient


def model_path() -> Path:
    return dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")


def test_packed_integers() -> None:
    # dlib: first byte = number of bytes (high bit: negative), then little-endian bytes
    r = dlib_resnet._Reader(bytes([0x00, 0x01, 0x05, 0x02, 0x00, 0x01, 0x81, 0x03]), 0)
    assert [r.int(), r.int(), r.int(), r.int()] == [0, 5, 256, -3]


def test_tensor_of_unknown_version_is_refused() -> None:
    with pytest.raises(dlib_resnet.DlibFormatError, match="version"):
        dlib_resnet._Reader(bytes([0x01, 0x01]), 0).tensor()


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "net.dat"
    bad.write_bytes(model_path().read_bytes()[:1_000_000])
    with pytest.raises(dlib_resnet.DlibFormatError, match=str(bad)):
        dlib_resnet.read_weights(bad)


def test_add_prev_pads_the_smaller_branch_with_zeros() -> None:
    a = torch.ones(1, 2, 3, 3)
    b = torch.ones(1, 4, 2, 2)
    out = dlib_resnet._add_padded(a, b)
    assert out.shape == (1, 4, 3, 3)
    assert out[0, 0, 0, 0] == 2 and out[0, 0, 2, 2] == 1 and out[0, 3, 2, 2] == 0


def test_weights_have_the_documented_architecture() -> None:
    w = dlib_resnet.read_weights(model_path())
    assert w.convs[0].weight.shape == (32, 3, 7, 7) and w.convs[0].stride == 2
    assert w.convs[0].padding == 0
    assert [c.weight.shape[0] for c in w.convs[1:]] == [32] * 6 + [64] * 8 + [128] * 6 + [256] * 8
    assert w.fc.shape == (128, 256)


def test_same_descriptors_as_dlib_on_a_chip() -> None:
    # any 150 px image goes through the same arithmetic; painted faces: the slow test below
    chip = np.asarray(gradient(150, 150, seed=1).convert("RGB"))
    reference = _import_dlib().face_recognition_model_v1(str(model_path()))
    expected = np.asarray(reference.compute_face_descriptor(chip, 0))
    ours = dlib_resnet.descriptors(dlib_resnet.load_model(model_path()), chip[None])[0]
    np.testing.assert_allclose(ours, expected, atol=1e-5)


@pytest.mark.slow
def test_same_descriptors_as_dlib_on_painted_faces(data_dir: Path) -> None:
    chips = []
    for objectid in ("46191", "34104", "1128"):
        image = load_rgb(data_dir / "nga" / "images" / f"{objectid}.jpg")
        chips += [np.asarray(a.chip) for a in align_faces(image, detect_faces(image))]
    assert len(chips) >= 3
    dlib = _import_dlib()
    reference_net = dlib.face_recognition_model_v1(str(model_path()))
    reference = np.array([np.asarray(v) for v in reference_net.compute_face_descriptor(chips, 0)])
    ours = dlib_resnet.descriptors(dlib_resnet.load_model(model_path()), np.stack(chips))
    np.testing.assert_allclose(ours, reference, atol=1e-5)
