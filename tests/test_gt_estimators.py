"""Issue 16: the "anchored" estimator against a slow per-pixel reference, its engines, and the
residual-rain score."""

import json

import numpy as np
import pytest

from rainset import groundtruth as gt


def _ref_percentile(vals, p):
    s = sorted(int(v) for v in vals)
    k, r = divmod(p * (len(s) - 1), 100)
    return s[k] if r == 0 else (100 * s[k] + r * (s[k + 1] - s[k])) // 100


def _ref_anchored(frames):
    """The definition, element by element, in plain Python integers."""
    t, h, w, _ = frames.shape
    f = frames.astype(int)
    luma = (299 * f[..., 0] + 587 * f[..., 1] + 114 * f[..., 2]) // 1000
    votes = [0] * 101
    for y in range(h):
        for x in range(w):
            s = sorted(luma[:, y, x].tolist())
            counts = {v: s.count(v) for v in s}
            mode = min(v for v in counts if counts[v] == max(counts.values()))
            first, last = s.index(mode), s.index(mode) + counts[mode] - 1
            for p in range(101):
                votes[p] += 100 * first <= p * t <= 100 * last
    p_hat = votes.index(max(votes))
    anchor = np.zeros((h, w, 3), int)
    lowdev = [0] * 256
    for y in range(h):
        for x in range(w):
            for c in range(3):
                a = _ref_percentile(f[:, y, x, c], p_hat)
                anchor[y, x, c] = a
                for v in f[:, y, x, c]:
                    if v <= a:
                        lowdev[a - v] += 1
    total, cum, d90 = sum(lowdev), 0, 0
    for d in range(256):
        cum += lowdev[d]
        if 10 * cum >= 9 * total:
            d90 = d
            break
    wu = max(-(-d90 * 2500 // 1645), 2)
    wl = max(-(-d90 * 4000 // 1645), 2)
    out = np.zeros((h, w, 3), np.uint8)
    for y in range(h):
        for x in range(w):
            for c in range(3):
                a = anchor[y, x, c]
                vals = f[:, y, x, c].tolist()
                keep = [v for v in vals if a - wl <= v <= a + wu]
                rain = sum(v > a + 13 for v in vals)
                out[y, x, c] = a if rain > 15 or not keep else (2 * sum(keep) + len(keep)) // (2 * len(keep))
    return out, p_hat, (wl, wu)


def _stack(seed, t=24, h=5, w=6, rain=0.2, sigma=3.0):
    g = np.random.default_rng(seed)
    bg = g.integers(10, 240, (h, w, 3))
    x = bg[None] + g.normal(0, sigma, (t, h, w, 3))
    x += (g.random((t, h, w, 1)) < rain) * g.integers(5, 120, (t, h, w, 1))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed,t,rain", [(0, 24, 0.1), (1, 41, 0.5), (2, 7, 0.0), (3, 60, 0.3)])
def test_anchored_matches_the_slow_reference(seed, t, rain):
    frames = _stack(seed, t=t, rain=rain)
    want, p_hat, window = _ref_anchored(frames)
    got = gt.estimate_clean(frames, method="anchored")
    assert got.p_hat == p_hat
    np.testing.assert_array_equal(got.image, want)
    assert got.method == "anchored"


def test_anchored_window_follows_the_noise():
    # D90 of the lower deviations sets the window: wider noise, wider window.
    narrow = np.zeros(256, np.int64)
    narrow[:2] = [50, 50]
    wide = np.zeros(256, np.int64)
    wide[:8] = 10
    assert gt.anchor_window(narrow) == (3, 2)  # D90 = 1
    assert gt.anchor_window(np.array([5] + [0] * 255)) == (2, 2)  # D90 = 0: the 2-level floor
    assert gt.anchor_window(wide) == (-(-7 * 4000 // 1645), -(-7 * 2500 // 1645))


def test_anchored_engines_agree():
    frames = _stack(4, t=50, h=9, w=11, rain=0.35)
    x = frames.reshape(50, -1)
    numba = gt._estimate(frames, select="luma", method="anchored", engine="numba")
    numpy = gt._estimate(frames, select="luma", method="anchored", engine="numpy", tile_rows=2)
    np.testing.assert_array_equal(numba.image, numpy.image)
    # odd/even frame views take the strided path of the compiled kernels
    for view in (frames[::2], frames[1::2]):
        np.testing.assert_array_equal(
            gt._estimate(view, select="rgb", method="anchored", engine="numba").image,
            gt._estimate(view, select="rgb", method="anchored", engine="numpy").image,
        )
    torch = pytest.importorskip("torch")
    tc = gt._estimate(frames, select="luma", method="anchored", engine="torch-cpu", tile_rows=3)
    np.testing.assert_array_equal(tc.image, numba.image)
    assert x.shape[1] == frames[0].size
    if torch.cuda.is_available():
        cu = gt._estimate(frames, select="luma", method="anchored", engine="torch-cuda")
        np.testing.assert_array_equal(cu.image, numba.image)


def test_anchored_beats_spa_on_noise_and_keeps_out_rain():
    # light rain, sigma 2: the trimmed mean removes most of the noise the SPA percentile keeps.
    g = np.random.default_rng(5)
    bg = g.integers(30, 200, (16, 16, 3)).astype(float)
    x = bg[None] + g.normal(0, 2.0, (60, 16, 16, 3))
    x += (g.random((60, 16, 16, 1)) < 0.05) * 80
    frames = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    err = {m: np.abs(gt.estimate_clean(frames, method=m).image - bg).mean() for m in ("spa", "anchored")}
    assert err["anchored"] < 0.6 * err["spa"]
    assert err["anchored"] < 0.5


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="anchored"):
        gt.estimate_clean(np.zeros((3, 2, 2, 3), np.uint8), method="lowest")


@pytest.mark.parametrize("method", ["spa", "anchored"])
def test_score_and_predicted_error_grow_with_residual_rain(method):
    from rainset.review import predicted_error, split_half_score

    g = np.random.default_rng(6)
    bg = g.integers(40, 200, (24, 32, 3)).astype(float)
    base = np.clip(np.rint(bg[None] + g.normal(0, 2.0, (40, 24, 32, 3))), 0, 255).astype(np.uint8)
    order = g.permutation(24 * 32)
    scores = []
    for k in (0, 20, 60, 150, 400):
        frames = base.copy()
        ys, xs = np.unravel_index(order[:k], (24, 32))
        # rain on the same pixels of every even frame: it survives in that half's estimate
        frames[0::2, ys, xs] = np.minimum(frames[0::2, ys, xs].astype(int) + 60, 255).astype(np.uint8)
        scores.append(split_half_score(frames, lambda s: gt.estimate_clean(s, method=method).image))
    assert all(b > a for a, b in zip(scores, scores[1:])), scores
    preds = [predicted_error(s) for s in scores]
    assert all(b > a for a, b in zip(preds, preds[1:])), preds


def test_predicted_error_inverts_and_auto_review_states_it():
    from rainset.buildgt import AUTO_THRESHOLD
    from rainset.review import (
        AUTO_TARGET_ERROR,
        Candidate,
        auto_reviewer,
        predicted_error,
        score_for_error,
    )

    assert score_for_error(predicted_error(1.7)) == pytest.approx(1.7)
    # the default threshold is the calibrated one: its predicted error is the stated target
    assert predicted_error(AUTO_THRESHOLD) == pytest.approx(AUTO_TARGET_ERROR, abs=0.015)
    cand = Candidate("s", 0, 20, np.zeros((2, 2, 3), np.uint8), score=0.5)
    d = auto_reviewer(AUTO_THRESHOLD)(cand)
    assert d.action == "accept" and f"predicted error {predicted_error(0.5):.2f}" in d.reason


def test_build_gt_method_anchored_with_auto_review_states_the_predicted_error(static_clip, tmp_path):
    from click.testing import CliRunner

    from rainset_cli.main import cli

    clip, _ = static_clip(n=30)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["build-gt", str(clip), "--density", "sparse", "--method", "anchored",
                                 "--review", "auto", "--auto-threshold", "50", "-o", str(out)])
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert records and {rec["method"] for rec in records} == {"anchored"}
    decisions = json.loads((out / "review.json").read_text())["decisions"]
    assert all("predicted error" in d["reason"] for d in decisions.values())
