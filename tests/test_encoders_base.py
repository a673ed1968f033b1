"""What every whole-image encoder shares (artsim.encoders.base): preprocessing, GeM pooling,
batched embedding into unit vectors."""

from __future__ import annotations

import numpy as np
import torch

from artsim.encoders.base import Encoder, Preprocess, file_sha256, gem, parse_cpuinfo
from tests.images_factory import gradient


def test_gem_between_avg_and_max():
    x = torch.rand(2, 4, 5, 5)
    g = gem(x, p=3.0)
    assert torch.all(g >= x.mean(dim=(2, 3)) - 1e-6) and torch.all(g <= x.amax(dim=(2, 3)) + 1e-6)
    assert torch.allclose(gem(x, p=1.0), x.mean(dim=(2, 3)), atol=1e-6)


def test_whole_view_keeps_the_whole_painting():
    pre = Preprocess(resize=64, crop=64, mean=(0.5,) * 3, std=(0.5,) * 3, view="whole")
    im = gradient(200, 100)
    t = pre.to_uint8(im)
    assert t.shape == (3, 64, 64)
    # left and right edges survive (a centre crop would cut them off)
    left = np.asarray(im)[:, :10].mean()
    assert abs(float(t[:, :, :2].float().mean()) - left) < 25


def test_preprocess_keeps_aspect_then_crops():
    pre = Preprocess(resize=64, crop=56, mean=(0.5,) * 3, std=(0.5,) * 3)
    t = pre.to_uint8(gradient(200, 100))
    assert t.shape == (3, 56, 56) and t.dtype == torch.uint8


class _Mean(Encoder):
    """A tiny encoder: the mean colour of each quadrant (12 numbers)."""

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1) + 3.0


def _tiny(**kw) -> _Mean:
    pre = Preprocess(resize=32, crop=32, mean=(0.5,) * 3, std=(0.25,) * 3, view="whole")
    return _Mean(name="tiny", dim=12, preprocess=pre, weights_hash="0" * 64,
                 model=torch.nn.Identity(), channels_last=False, **kw)  # fmt: skip


def test_embed_images_gives_unit_vectors_whatever_the_batching():
    enc = _tiny()
    ims = [gradient(60 + 5 * i, 40, i) for i in range(5)]
    whole = enc.embed_images(ims)
    assert whole.shape == (5, 12) and whole.dtype == np.float32
    assert np.allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-6)
    assert np.allclose(enc.embed_images(ims, batch_size=2), whole, atol=1e-6)
    assert enc.embed_images([]).shape == (0, 12)


def test_flip_average_adds_the_mirrored_view():
    im = gradient(64, 48, 1)
    plain, flipped = _tiny().embed_images([im]), _tiny(flip_average=True).embed_images([im])
    mirror = _tiny().embed_images([im.transpose(0)])  # PIL FLIP_LEFT_RIGHT
    expect = plain + mirror  # unit vectors of x + flip(x) as the forward sums them before norm
    assert not np.allclose(plain, flipped)
    assert np.allclose(flipped, expect / np.linalg.norm(expect), atol=0.05)


def test_normalise_and_describe():
    pre = Preprocess(resize=8, crop=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    assert torch.allclose(pre.normalise(x), torch.ones(1, 3, 2, 2))
    assert torch.allclose(pre.normalise(torch.zeros_like(x)), -torch.ones(1, 3, 2, 2))
    d = _tiny().describe()
    assert d["name"] == "tiny" and d["dim"] == 12 and d["preprocess"]["view"] == "whole"
    assert d["backend"] == "torch" and d["device"] == "cpu"


def test_file_sha256_streams_in_chunks(tmp_path):
    import hashlib

    p = tmp_path / "w.bin"
    data = bytes(range(256)) * 1000
    p.write_bytes(data)
    assert file_sha256(p, chunk=1000) == hashlib.sha256(data).hexdigest() == file_sha256(p)


def test_normalise_gives_the_plain_formula_bit_for_bit_and_leaves_its_input_alone():
    pre = Preprocess(resize=8, crop=8, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(pre.std).view(1, 3, 1, 1) * 255.0
    u8 = torch.randint(
        0, 256, (4, 3, 9, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(pre.normalise(u8), (u8.float() - mean) / std)
    f32 = u8.float()
    before = f32.clone()
    assert torch.equal(pre.normalise(f32), (before - mean) / std)
    assert torch.equal(f32, before)  # a float input is copied, not normalised in place
    strided = u8.permute(0, 1, 3, 2)  # not contiguous
    assert torch.equal(pre.normalise(strided), (strided.float() - mean) / std)
    one = u8[0]  # one image without a batch dimension: a batch of one, as before
    assert torch.equal(pre.normalise(one), (one.float() - mean) / std)


class _Counting(_Mean):
    """_Mean that records the size of every batch it is given and can fail on one."""

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        self.extra.setdefault("batches", []).append(len(x))
        if len(self.extra["batches"]) == self.extra.get("fail_at"):
            raise RuntimeError("the network failed")
        return super()._forward(x)


def test_embed_images_feeds_batches_in_order_and_passes_errors_on():
    import pytest

    ims = [gradient(40 + 3 * i, 30, i) for i in range(11)]
    enc = _Counting(name="tiny", dim=12, preprocess=_tiny().preprocess, weights_hash="0" * 64,
                    model=torch.nn.Identity(), channels_last=False)  # fmt: skip
    got = enc.embed_images(ims, batch_size=4)
    assert enc.extra["batches"] == [4, 4, 3]
    # the same vectors, in the same order, as one image at a time
    assert np.allclose(got, np.concatenate([_tiny().embed_images([im]) for im in ims]), atol=1e-6)
    enc.extra.clear()
    enc.extra["fail_at"] = 2
    with pytest.raises(RuntimeError, match="the network failed"):
        enc.embed_images(ims, batch_size=4)


def test_parse_cpuinfo_tells_cpu_generations_apart_by_family_and_model():
    # AMD names Zen 3, 4 and 5 "AMD EPYC" alike, with the same vector flags on 4 and 5: a
    # speed measurement remembered on one must not be taken for another
    def amd(family: int, model: int) -> str:
        block = (
            f"processor\t: {{n}}\nvendor_id\t: AuthenticAMD\ncpu family\t: {family}\n"
            f"model\t\t: {model}\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_bf16\n\n"
        )
        return block.format(n=0) + block.format(n=1).replace("avx2", "other")

    zen4, flags = parse_cpuinfo(amd(25, 17))
    assert zen4 == "AMD EPYC (cpu family 25, model 17)"
    assert flags == {"fpu", "avx2", "avx512_bf16"}  # the first processor's only
    assert parse_cpuinfo(amd(26, 2))[0] != zen4
    arm = "processor\t: 0\nFeatures\t: fp asimd bf16\nCPU implementer\t: 0x41\nCPU part\t: 0xd40\n"
    assert parse_cpuinfo(arm) == (
        "unknown (CPU implementer 0x41, CPU part 0xd40)",
        frozenset({"fp", "asimd", "bf16"}),
    )
    assert parse_cpuinfo("") == ("unknown", frozenset())
