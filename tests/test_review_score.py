"""The residual-rain score of issue 16: split-half disagreement, frozen share, codec weighting."""

from __future__ import annotations

import numpy as np
import pytest

from rainset import groundtruth as gt
from rainset import review


def _frozen_share_reference(frames: np.ndarray) -> float:
    """Pixel by pixel, pair by pair: the share of quiet, unclipped pairs that repeat exactly."""
    same = quiet = 0
    t, h, w, _ = frames.shape
    for k in range(1, t):
        for y in range(h):
            for x in range(w):
                a = [int(v) for v in frames[k - 1, y, x]]
                b = [int(v) for v in frames[k, y, x]]
                if any(v in (0, 255) for v in a + b):
                    continue
                d = max(abs(p - q) for p, q in zip(a, b))
                if d <= review.FROZEN_QUIET:
                    quiet += 1
                    same += d == 0
    return same / quiet if quiet else 0.0


def _random_stack(g, t, h, w):
    """Frames with every case: exact repeats, small and large changes, clipped values."""
    base = g.integers(0, 256, (h, w, 3))
    frames = [base]
    for _ in range(t - 1):
        prev = frames[-1]
        step = g.choice([0, 0, 1, 3, 6, 7, 40], size=(h, w, 3)) * g.choice([-1, 1], size=(h, w, 3))
        keep = g.random((h, w, 1)) < 0.4  # whole pixels copied, as a codec's skipped block
        frames.append(np.where(keep, prev, np.clip(prev + step, 0, 255)))
    return np.stack(frames).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frozen_share_matches_a_slow_reference(seed):
    frames = _random_stack(np.random.default_rng(seed), 6, 7, 9)
    share = review.frozen_share(frames)
    assert share == pytest.approx(_frozen_share_reference(frames), abs=1e-12)
    assert 0 < share < 1


def test_frozen_share_counts_every_pair_of_a_long_window():
    frames = _random_stack(np.random.default_rng(4), 140, 4, 5)  # pairs in more than one chunk
    assert review.frozen_share(frames) == pytest.approx(_frozen_share_reference(frames), abs=1e-12)


def test_frozen_share_samples_a_regular_grid_of_large_frames():
    frames = _random_stack(np.random.default_rng(3), 3, 300, 300)  # 90000 pixels: every 3rd row and column
    step = int(np.ceil(np.sqrt(300 * 300 / review.FROZEN_PIXELS)))
    assert step == 3
    assert review.frozen_share(frames) == pytest.approx(_frozen_share_reference(frames[:, ::3, ::3]), abs=1e-12)


def test_frozen_share_edge_cases():
    assert review.frozen_share(np.zeros((3, 4, 4, 3), np.uint8)) == 0.0  # all clipped: no quiet pair
    assert review.frozen_share(np.full((3, 4, 4, 3), 100, np.uint8)) == 1.0
    with pytest.raises(ValueError):
        review.frozen_share(np.zeros((1, 4, 4, 3), np.uint8))


def test_codec_weight_ramps_over_the_frozen_share():
    lo, hi = review.FROZEN_RAMP
    assert review.codec_weight(0.0) == review.codec_weight(lo) == 0.0
    assert review.codec_weight((lo + hi) / 2) == pytest.approx(0.5)
    assert review.codec_weight(hi) == review.codec_weight(0.7) == 1.0
    # the score is the disagreement without a codec; with one its parts are weighted by N
    f = review.CODEC_N_REF / 50
    assert review.combine_score(1.0, 1.5, 0.0, 50) == 2.5
    assert review.combine_score(1.0, 1.5, 0.5, 50) == pytest.approx(
        f ** review.RAIN_N_POWER + 1.5 * f ** review.REST_N_POWER)
    f = review.CODEC_N_REF / 80
    assert review.combine_score(1.0, 1.5, 0.02, 80) == pytest.approx(
        f ** (review.RAIN_N_POWER / 2) + 1.5 * f ** (review.REST_N_POWER / 2))
    # short windows keep the disagreement as it is
    assert review.combine_score(1.0, 1.5, 0.5, review.CODEC_N_REF) == review.combine_score(1.0, 1.5, 0.5, 6) == 2.5


def _background(g, h=24, w=32):
    return g.integers(40, 200, (h, w, 3)).astype(float)


def _camera(bg, g, t):
    """Fresh sensor noise (sigma 2) in every frame: as a camera delivers it, no codec."""
    return np.clip(np.rint(bg[None] + g.normal(0, 2.0, (t, *bg.shape))), 0, 255).astype(np.uint8)


def _codec_like(bg, g, t):
    """Noise frozen into the first frame and copied on (a static scene through H.264), with a
    small fresh part on 10 % of the pixels of each frame."""
    first = np.clip(np.rint(bg + g.normal(0, 2.0, bg.shape)), 0, 255)
    frames = np.repeat(first[None], t, axis=0)
    touched = g.random((t, *bg.shape[:2], 1)) < 0.1
    frames = np.where(touched, np.clip(frames + g.choice([-1, 1], (t, *bg.shape)), 0, 255), frames)
    return frames.astype(np.uint8)


@pytest.mark.parametrize("method", ["spa", "anchored", "robust"])
def test_score_grows_with_residual_rain_on_a_fixed_background_through_a_codec(method):
    # (without a codec the score is the split-half disagreement: tests/test_gt_estimators.py)
    g = np.random.default_rng(6)
    bg = _background(g)
    base = _codec_like(bg, g, 40)
    order = g.permutation(bg.shape[0] * bg.shape[1])
    scores = []
    for k in (0, 20, 60, 150, 400):
        frames = base.copy()
        ys, xs = np.unravel_index(order[:k], bg.shape[:2])
        # rain on the same pixels of every even frame: it survives in that half's estimate
        frames[0::2, ys, xs] = np.minimum(frames[0::2, ys, xs].astype(int) + 60, 255).astype(np.uint8)
        assert review.codec_weight(review.frozen_share(frames)) == 1.0
        scores.append(review.split_half_score(frames, lambda s: gt.estimate_clean(s, method=method).image))
    assert all(b > a for a, b in zip(scores, scores[1:])), scores
    preds = [review.predicted_error(s) for s in scores]
    assert all(b > a for a, b in zip(preds, preds[1:])), preds


def _split_reference(frames, est):
    """(rain, rest) pixel by pixel."""
    a = est(frames[0::2]).astype(int)
    b = est(frames[1::2]).astype(int)
    rain = rest = 0
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            d = max(abs(a[y, x, c] - b[y, x, c]) for c in range(3))
            if d >= review.RAIN_LEVELS:
                rain += d
            else:
                rest += d
    n = a.shape[0] * a.shape[1]
    return rain / n, rest / n


def test_score_is_the_disagreement_without_a_codec_and_weighted_by_n_with_one():
    g = np.random.default_rng(8)
    bg = _background(g)

    def est(s):
        return gt.estimate_clean(s).image

    for n in (10, 40, 60):
        camera = _camera(bg, g, n)
        camera[0::2, :4] = 250  # rain that survives in one half
        assert review.frozen_share(camera) < review.FROZEN_RAMP[0]
        assert review.split_half_score(camera, est) == review.split_half_disagreement(camera, est)
        coded = _codec_like(bg, g, n)
        coded[0::2, :4] = 250
        assert review.frozen_share(coded) > review.FROZEN_RAMP[1]
        rain, rest = review.split_half_parts(coded, est)
        assert (rain, rest) == pytest.approx(_split_reference(coded, est))
        assert rain > 0 and rest > 0
        assert review.split_half_disagreement(coded, est) == pytest.approx(rain + rest)
        f = min(1, review.CODEC_N_REF / n)
        assert review.split_half_score(coded, est) == pytest.approx(
            rain * f ** review.RAIN_N_POWER + rest * f ** review.REST_N_POWER)
    with pytest.raises(ValueError):
        review.split_half_score(coded[:3], est)
