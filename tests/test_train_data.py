"""Training data: items from both dataset kinds, scene splits, patches."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch") if os.environ.get("CI") != "true" else __import__("torch")

from rainset.dataset import DatasetWriter, SplitRule, open_dataset  # noqa: E402
from rainset.errors import InputError  # noqa: E402
from rainset.image import rain_mask  # noqa: E402
from rainset.train.data import PatchSource, PatchStream, check_splits, items  # noqa: E402


def _pair(rng, size=(40, 48)):
    clean = rng.integers(0, 200, (*size, 3), dtype=np.uint8)
    rainy = clean.copy()
    rainy[::3] = np.minimum(rainy[::3].astype(int) + 40, 255).astype(np.uint8)
    return rainy, clean


def make_paired(root, *, n=6, test_scenes=("s0",), with_mask=False, size=(40, 48)):
    rng = np.random.default_rng(0)
    with DatasetWriter(
        root, kind="paired", params={}, split_rule=SplitRule(test_scenes=test_scenes), tool="t"
    ) as w:
        for i in range(n):
            rainy, clean = _pair(rng, size)
            rec = {
                "id": f"{i}",
                "scene": f"s{i % 3}",
                "rainy": w.write_image(f"rainy/{i}", rainy),
                "clean": w.write_image(f"clean/{i}", clean),
            }
            if with_mask:
                # A stored mask that differs from the computed one (all rain in the left half).
                mask = np.zeros(size, bool)
                mask[:, : size[1] // 2] = True
                rec["mask"] = w.write_image(f"mask/{i}", mask)
            w.add(rec)
    return open_dataset(root)


def test_paired_items_and_splits(tmp_path):
    ds = make_paired(tmp_path / "d")
    train, test = check_splits(ds)
    assert {it.scene for it in test} == {"s0"}
    assert {it.scene for it in train} == {"s1", "s2"}
    assert len(train) + len(test) == 6
    assert all(it.mask is None for it in train)


def test_empty_test_split_with_named_missing_scene(tmp_path):
    ds = make_paired(tmp_path / "d", test_scenes=("nope",))
    with pytest.raises(InputError, match="`test_scenes`.*s0, s1, s2"):
        check_splits(ds)


def test_all_test_is_an_error(tmp_path):
    ds = make_paired(tmp_path / "d", test_scenes=("s0", "s1", "s2"))
    with pytest.raises(InputError, match="train split is empty"):
        check_splits(ds)


def test_timelapse_frames_with_pseudo_gt_train_like_pairs(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "tl"
    with DatasetWriter(
        root, kind="timelapse", params={}, split_rule=SplitRule(test_scenes=("b",)), tool="t"
    ) as w:
        for scene in ("a", "b"):
            rainy, clean = _pair(rng)
            c = w.write_image(f"clean/{scene}", clean)
            for k in range(3):
                f = w.write_image(f"frames/{scene}/{k}", rainy)
                w.add({"id": f"{scene}{k}", "scene": scene, "frame": f, "index": k, "clean": c})
    ds = open_dataset(root)
    train, test = check_splits(ds)
    assert [it.id for it in train] == ["a0", "a1", "a2"] and len(test) == 3
    assert train[0].rainy == "frames/a/0.png" and train[0].clean == "clean/a.png"


def test_timelapse_without_pseudo_gt_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "tl"
    with DatasetWriter(root, kind="timelapse", params={}, tool="t") as w:
        rainy, _ = _pair(rng)
        for k in range(2):
            f = w.write_image(f"frames/{k}", rainy)
            w.add({"id": f"{k}", "scene": "a", "frame": f, "index": k})
    with pytest.raises(InputError, match="pseudo ground truth"):
        items(open_dataset(root), split=None)


def test_patch_is_a_window_with_the_shared_mask(tmp_path):
    ds = make_paired(tmp_path / "d")
    train = items(ds, split="train")
    src = PatchSource(ds, train, crop=16, scale=(1.0, 1.0), flip=False, mask_threshold=13)
    r, c, m = src.patch(np.random.default_rng(3))
    assert r.shape == (16, 16, 3) and r.dtype == np.uint8 and m.dtype == bool
    # The patch is a window of one training image, and its mask is rain_mask of the window.
    found = False
    for k in range(len(train)):
        rainy, clean, _ = src.load(k)
        for y in range(rainy.shape[0] - 15):
            for x in range(rainy.shape[1] - 15):
                if np.array_equal(rainy[y : y + 16, x : x + 16], r) and np.array_equal(
                    clean[y : y + 16, x : x + 16], c
                ):
                    found = True
    assert found
    np.testing.assert_array_equal(m, rain_mask(r, c, threshold=13))
    assert m.any() and not m.all()


def test_stored_mask_is_used_and_scaled(tmp_path):
    ds = make_paired(tmp_path / "d", with_mask=True, size=(40, 40))
    train = items(ds, split="train")
    assert all(it.mask for it in train)
    src = PatchSource(ds, train, crop=20, scale=(0.5, 0.5), flip=False)
    r, c, m = src.patch(np.random.default_rng(0))
    # scale 0.5: the whole 40x40 image is resized to 20x20; the stored mask is the left half.
    assert r.shape == (20, 20, 3)
    assert m[:, :10].all() and not m[:, 10:].any()


def test_stream_is_seeded_and_batched(tmp_path):
    ds = make_paired(tmp_path / "d")
    src = PatchSource(ds, items(ds, split="train"), crop=16)
    a = next(iter(PatchStream(src, batch=3, seed=5)))
    b = next(iter(PatchStream(src, batch=3, seed=5)))
    c = next(iter(PatchStream(src, batch=3, seed=5, start_step=10)))
    assert a[0].shape == (3, 3, 16, 16) and a[2].shape == (3, 1, 16, 16)
    assert a[0].dtype == torch.float32 and 0 <= a[0].min() and a[0].max() <= 1
    assert set(torch.unique(a[2]).tolist()) <= {0.0, 1.0}
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_patch_source_argument_checks(tmp_path):
    ds = make_paired(tmp_path / "d")
    with pytest.raises(ValueError, match="crop"):
        PatchSource(ds, items(ds, split="train"), crop=8)
    with pytest.raises(ValueError, match="scale"):
        PatchSource(ds, items(ds, split="train"), crop=16, scale=(1.0, 0.5))
    with pytest.raises(ValueError, match="empty"):
        PatchSource(ds, [], crop=16)
