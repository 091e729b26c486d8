"""rainset.train.data.PairedDataset: map-style items, paired crops and flips, DataLoader batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background

from rainset.dataset import open_dataset
from rainset.errors import InputError
from rainset.image import write_image
from rainset_cli.main import cli

torch = pytest.importorskip("torch")
from rainset.train.data import PairedDataset  # noqa: E402

SIZES = [(40, 56), (48, 40), (36, 36), (44, 60), (33, 70)]


def _cli(*args):
    r = CliRunner().invoke(cli, ["-q", *map(str, args)])
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> Path:
    """10 synthetic pairs of five different sizes, all in train."""
    root = tmp_path_factory.mktemp("pd")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(SIZES):
        write_image(root / "photos" / f"p{i}.png", rng.integers(0, 256, (h, w, 3), np.uint8))
    _cli("synth", root / "photos", "-o", root / "syn", "--per-image", 2, "--test-fraction", 0)
    return root / "syn"


@pytest.fixture(scope="module")
def tl(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pdtl")
    bg = textured_background(32, 48, 2)
    for t, f in enumerate(rain_frames(bg, 12, seed=2)):
        write_image(root / "cam" / f"img{t:02d}.png", f)
    _cli("pairs", root / "cam", "-n", 6, "--pairs-per-segment", 8, "-o", root / "tl")
    return root / "tl"


def _find(window: np.ndarray, image: np.ndarray) -> tuple[int, int, bool]:
    """Where (y, x) and whether flipped ``window`` sits in ``image``; brute force."""
    c = window.shape[0]
    for flip in (False, True):
        w = window[:, ::-1] if flip else window
        for y in range(image.shape[0] - c + 1):
            for x in range(image.shape[1] - c + 1):
                if np.array_equal(image[y : y + c, x : x + c], w):
                    return y, x, flip
    raise AssertionError("window not found in the image")


def _u8(t) -> np.ndarray:
    return np.rint(t.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def test_items_are_dicts_of_the_samples_with_absent_fields_left_out(syn):
    ds = open_dataset(syn)
    pd = PairedDataset(syn, split="train")
    assert len(pd) == 10
    recs = list(ds.samples(split="train"))
    for i in (0, 7):
        item = pd[i]
        assert set(item) == {"rainy", "clean", "id", "scene", "labels"}
        assert item["rainy"].dtype == torch.float32 and item["rainy"].shape[0] == 3
        assert np.array_equal(_u8(item["rainy"]), ds.load(recs[i], "rainy"))  # no crop, no flip
        assert item["id"] == recs[i]["id"] and item["labels"]["theta"] == recs[i]["labels"]["theta"]
        assert all(v is not None for v in item["labels"].values())
    item = PairedDataset(syn, return_mask=True, transform=lambda d: {**d, "extra": 1})[3]
    assert np.array_equal(item["mask"][0].numpy() > 0.5, ds.load_mask(recs[3]))
    assert item["extra"] == 1


def test_crop_takes_one_window_of_rainy_clean_and_mask(syn):
    ds = open_dataset(syn)
    recs = list(ds.samples(split="train"))
    pd = PairedDataset(syn, crop=24, return_mask=True)
    torch.manual_seed(3)
    flips = set()
    for i in range(len(pd)):
        item = pd[i]
        rainy = ds.load(recs[i], "rainy")
        y, x, flip = _find(_u8(item["rainy"]), rainy)
        flips.add(flip)
        win = (slice(y, y + 24), slice(x, x + 24))
        clean = ds.load(recs[i], "clean")[win]
        mask = ds.load_mask(recs[i])[win]
        if flip:
            clean, mask = clean[:, ::-1], mask[:, ::-1]
        assert np.array_equal(_u8(item["clean"]), clean)
        assert np.array_equal(item["mask"][0].numpy() > 0.5, mask)
    assert flips == {False, True}


def test_dataloader_batches_mixed_sizes_with_a_crop(syn):
    pd = PairedDataset(syn, crop=32, return_mask=True)
    loader = torch.utils.data.DataLoader(pd, batch_size=4, num_workers=2, shuffle=True)
    batches = list(loader)
    assert [b["rainy"].shape[0] for b in batches] == [4, 4, 2]
    assert batches[0]["rainy"].shape == (4, 3, 32, 32) and batches[0]["mask"].shape == (4, 1, 32, 32)
    assert sorted(i for b in batches for i in b["id"]) == sorted(r["id"] for r in pd._records)
    assert isinstance(batches[0]["labels"]["theta"], torch.Tensor)


def test_pair_mode_gives_frames_m_and_n_with_both_foreground_masks(tl):
    ds = open_dataset(tl)
    pd = PairedDataset(tl, split=None, pairs=True, return_mask=True, crop=16)
    assert len(pd) == ds.meta["counts"]["pairs"]
    loader = torch.utils.data.DataLoader(pd, batch_size=4, num_workers=2)
    batch = next(iter(loader))
    for key in ("frame_a", "frame_b"):
        assert batch[key].shape == (4, 3, 16, 16)
    for key in ("mask_a", "mask_b"):
        assert batch[key].shape == (4, 1, 16, 16)
    assert "clean" not in batch  # no pseudo ground truth in this dataset: left out, not None
    item = PairedDataset(tl, split=None, pairs=True, return_mask=True)[0]
    a, b = ds.sample(item["a"]), ds.sample(item["b"])
    assert a["scene"] == b["scene"] == item["scene"] and a["id"] != b["id"]
    assert np.array_equal(_u8(item["frame_a"]), ds.load(a, "frame"))
    assert np.array_equal(_u8(item["frame_b"]), ds.load(b, "frame"))
    assert np.array_equal(item["mask_b"][0].numpy() > 0.5, ds.load_mask(b))


def test_bad_uses_are_refused(syn, tl):
    with pytest.raises(ValueError, match="time-lapse"):
        PairedDataset(syn, pairs=True)
    with pytest.raises(InputError, match="pseudo ground truth"):
        PairedDataset(tl, split=None)
    with pytest.raises(InputError, match="no samples"):
        PairedDataset(syn, split="test")
    with pytest.raises(InputError, match="smaller than the crop"):
        PairedDataset(syn, crop=64)[0]
