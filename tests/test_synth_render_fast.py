"""The compiled rendering path (issue 14) gives the same bytes as the slow reference steps.

``streaks.splat`` (numba, banded) against ``streaks.splat_reference`` (one ``np.bincount``,
the code before issue 14), and ``synth.render``'s one-pass ``"add"`` blend against the
separate steps it replaces (``rain_layer``, ``composite``, ``cv2.subtract``, ``rain_mask``).
Equality is exact: no tolerance.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rainset import streaks
from rainset import synth as S
from rainset.image import rain_mask


def _clean(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[: h // 4, : w // 3] = 250  # near-saturated: the residual is cut by 255 - clean
    img[h // 4 : h // 2, : w // 3] = 255
    img[h // 2 :, -w // 5 :, 1] = 247  # one channel near the top only
    return img


def _steps(clean: np.ndarray, params: streaks.RainParams, threshold: int):
    """The rendering steps before issue 14, with the bincount splat."""
    rain = streaks.splat_reference(clean.shape[:2], streaks._streak_groups(clean.shape, params))
    rainy = S.composite(clean, rain, blend="add")
    residual = cv2.subtract(rainy, clean)
    mask = rain_mask(rainy, clean, threshold=threshold)
    return rain, rainy, residual, mask, float(np.count_nonzero(mask) / mask.size)


@pytest.mark.parametrize("density", ["light", "medium", "heavy"])
def test_compiled_splat_is_bit_identical_to_bincount(density):
    shape = (300, 420, 3)
    for seed in range(6):
        p = S.sample_params(shape, rng=seed, density=density)
        groups = streaks._streak_groups(shape, p)
        got = streaks.splat(shape[:2], groups)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, streaks.splat_reference(shape[:2], groups))


def test_compiled_splat_handles_border_streaks_duplicates_and_empty_groups():
    rng = np.random.default_rng(3)
    k1 = streaks.sparse_peak_kernel(30.0, 25.0, 0.8)
    k2 = streaks.sparse_peak_kernel(-15.0, 6.0, 0.3)
    h, w = 37, 45  # smaller than a band and than some streaks
    groups = []
    for k, n in ((k1, 40), (k2, 60)):
        hy, hx = k.half
        c = np.stack([rng.integers(-hy, h + hy, n), rng.integers(-hx, w + hx, n)], axis=1)
        c[5] = c[4]  # two streaks on one centre: the order of their sum is kept
        groups.append((c, rng.random(n), k))
    groups.append((np.zeros((0, 2), np.intp), np.zeros(0), k2))
    np.testing.assert_array_equal(streaks.splat((h, w), groups), streaks.splat_reference((h, w), groups))
    assert not streaks.splat((h, w), []).any()


def test_splat_falls_back_to_the_reference_for_other_kernel_layouts():
    # Entries not in runs of consecutive columns: not sparse_peak_kernel's layout.
    k = streaks.SparseKernel(np.array([0, 0, 1]), np.array([-2, 1, 0]), np.array([1.0, 0.5, 0.25]), (1, 2))
    c = np.array([[3, 3], [0, 9], [7, 0]])
    got = streaks.splat((8, 10), [(c, np.array([0.3, 0.6, 0.9]), k)])
    np.testing.assert_array_equal(got, streaks.splat_reference((8, 10), [(c, np.array([0.3, 0.6, 0.9]), k)]))


@pytest.mark.parametrize("threshold", [1, 13, 200, 255])
def test_render_one_pass_equals_the_separate_steps(threshold):
    clean = _clean(257, 333)
    for density in ("light", "heavy"):
        for seed in range(3):
            p = S.sample_params(clean.shape, rng=seed, density=density)
            out = S.render(clean, p, mask_threshold=threshold)
            rain, rainy, residual, mask, coverage = _steps(clean, p, threshold)
            np.testing.assert_array_equal(out.rain, rain)
            np.testing.assert_array_equal(out.rainy, rainy)
            np.testing.assert_array_equal(out.residual, residual)
            np.testing.assert_array_equal(out.mask, mask)
            assert out.mask.dtype == np.bool_ and out.rain.dtype == np.float32
            assert out.coverage == coverage


def test_one_pass_levels_round_like_opencv_at_ties_and_saturation():
    """Rain values at and beside every level's rounding tie (k + 0.5) / 255, and above 1."""
    k = np.arange(0, 300, dtype=np.float64)
    ties = ((k + 0.5) / 255).astype(np.float32)
    values = np.concatenate(
        [np.nextafter(ties, np.float32(-1)), ties, np.nextafter(ties, np.float32(2)), [0.0, 1.0, 3.7]]
    ).astype(np.float32)
    h, w = 3, values.size // 3 + 1
    one = streaks.SparseKernel(np.array([0]), np.array([0]), np.array([1.0]), (0, 0))
    cells = np.arange(values.size)
    centres = np.stack([cells // w, cells % w], axis=1)
    clean = _clean(h, w, seed=1)
    from rainset._splat_numba import splat_add

    rain, rainy, residual, mask, count = splat_add(clean, [(centres, values.astype(np.float64), one)], 13)
    np.testing.assert_array_equal(rain.ravel()[: values.size], values)
    want = S.composite(clean, rain, blend="add")
    np.testing.assert_array_equal(rainy, want)
    np.testing.assert_array_equal(residual, cv2.subtract(want, clean))
    np.testing.assert_array_equal(mask, rain_mask(want, clean))
    assert count == np.count_nonzero(mask)


def test_render_screen_blend_and_odd_inputs_keep_the_old_path():
    clean = _clean(64, 80)
    p = S.sample_params(clean.shape, rng=5, density="heavy")
    screen = streaks.RainParams(**{**p.__dict__, "blend": "screen"})
    out = S.render(clean, screen)
    rain = streaks.rain_layer(clean.shape, screen)
    np.testing.assert_array_equal(out.rainy, S.composite(clean, rain, blend="screen"))
    view = np.asarray(clean[:, ::-1])  # not C-contiguous: the separate steps, same result
    np.testing.assert_array_equal(S.render(view, p).rainy, _steps(np.ascontiguousarray(view), p, 13)[1])
    with pytest.raises(ValueError, match="clean must be"):
        S.render(clean[:, :, :2], p)
