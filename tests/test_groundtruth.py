"""rainset.groundtruth: the SPANet estimator and the robust mean against slow, obvious loops.

Every engine (numba, numpy, torch on the CPU) is checked against the same pure-Python
references on small random stacks with many ties, odd and even N, both selection modes.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from rainset import groundtruth as gt
from rainset.errors import RainsetError
from rainset.image import rgb_to_luma

GOLDEN = Path(__file__).parent / "golden" / "gt_tiny.json"


def _torch():
    return pytest.importorskip("torch") if os.environ.get("CI") != "true" else __import__("torch")


@pytest.fixture(params=["numba", "numpy", "torch-cpu"])
def engine(request):
    if request.param == "numba":
        pytest.importorskip("numba")
    if request.param == "torch-cpu":
        _torch()
    return request.param


# --- slow references: plain Python, one element at a time --------------------------------------


def ref_mode(vals):
    """(i_first, i_last, mode) of a list of ints: most frequent value, smallest on ties."""
    counts = {}
    for v in vals:
        counts[v] = counts.get(v, 0) + 1
    best = max(counts.values())
    mode = min(v for v, c in counts.items() if c == best)
    s = sorted(vals)
    first = s.index(mode)
    return first, first + counts[mode] - 1, mode


def ref_votes(ranges, n):
    """votes[p] = elements whose range [100 f / n, 100 l / n] contains p, compared exactly."""
    return [
        sum(1 for f, la in ranges if Fraction(100 * f, n) <= p <= Fraction(100 * la, n))
        for p in range(101)
    ]


def ref_percentile(vals, p):
    """floor of the p-th percentile with linear interpolation, in exact fractions."""
    s = sorted(vals)
    pos = Fraction(p * (len(s) - 1), 100)
    k = math.floor(pos)
    nxt = s[min(k + 1, len(s) - 1)]
    return math.floor(s[k] + (pos - k) * (nxt - s[k]))


def ref_robust(vals, k=gt.ROBUST_K):
    x = np.array(vals, dtype=np.float64)
    med = np.median(x)
    sigma = max(1.4826 * np.median(np.abs(x - med)), 1.0)
    kept = [v for v in vals if v <= med + k * sigma]
    return math.floor(Fraction(sum(kept), len(kept)) + Fraction(1, 2))


def ref_estimate(frames, select):
    """p_hat, votes, image, mode indices and modes, computed pixel by pixel."""
    n, h, w, _ = frames.shape
    f = frames.astype(int)
    series = {}
    for i in range(h):
        for j in range(w):
            if select == "luma":
                series[i, j] = [
                    (299 * r + 587 * g + 114 * b) // 1000 for r, g, b in f[:, i, j].tolist()
                ]
            else:
                for c in range(3):
                    series[i, j, c] = f[:, i, j, c].tolist()
    stats = {key: ref_mode(v) for key, v in series.items()}
    votes = ref_votes([st[:2] for st in stats.values()], n)
    p = votes.index(max(votes))
    image = np.zeros((h, w, 3), np.uint8)
    for i in range(h):
        for j in range(w):
            for c in range(3):
                image[i, j, c] = ref_percentile(f[:, i, j, c].tolist(), p)
    shape = (h, w) if select == "luma" else (h, w, 3)
    idx = np.array([stats[key][:2] for key in series]).reshape(*shape, 2)
    modes = np.array([stats[key][2] for key in series]).reshape(shape)
    return p, votes, image, idx, modes


def rainy_stack(n, h, w, seed, *, levels=None):
    """Static background + noise of a level or two (many ties) + bright rain on ~15 %."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(20, 200, (h, w, 3)).astype(np.int16)
    if levels is not None:
        return (rng.integers(0, levels, (n, h, w, 3)) * (255 // max(levels - 1, 1))).astype(
            np.uint8
        )
    noise = rng.integers(-1, 2, (n, h, w, 3))
    rain = (rng.random((n, h, w, 1)) < 0.15) * rng.integers(20, 60, (n, h, w, 1))
    return np.clip(bg + noise + rain, 0, 255).astype(np.uint8)


# --- the three steps ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 10, 33])
def test_mode_stats_match_reference(engine, n):
    rng = np.random.default_rng(n)
    x = np.concatenate(
        [
            rng.integers(0, 3, (n, 30)) * 7,  # few values: ties everywhere
            rng.integers(0, 256, (n, 30)),  # mostly distinct: ranges may hold no integer p
            np.full((n, 4), 255),
        ],
        axis=1,
    ).astype(np.uint8)
    fl, mode, votes = gt._mode_stats(x, luma=False, engine=engine, tile=17)
    ref = [ref_mode(x[:, e].tolist()) for e in range(x.shape[1])]
    assert fl.tolist() == [[f, la] for f, la, _ in ref]
    assert mode.tolist() == [m for *_, m in ref]
    assert votes.tolist() == ref_votes([r[:2] for r in ref], n)


def test_mode_ranges_public_shape():
    x = np.array([[5, 1], [3, 1], [5, 2], [3, 2]], np.uint8)[:, None, :]  # (4, 1, 2)
    first, last, mode = gt.mode_ranges(x)
    # column 0: 3, 3, 5, 5 -> tie between 3 and 5 goes to 3; column 1: 1, 1, 2, 2 -> 1
    assert mode.tolist() == [[3, 1]] and first.tolist() == [[0, 0]] and last.tolist() == [[1, 1]]
    assert first.dtype == np.uint16 and mode.dtype == np.uint8


def test_vote_percentile_matches_reference():
    rng = np.random.default_rng(0)
    for n in (1, 3, 7, 10, 99, 100, 101, 300):
        first = rng.integers(0, n, 200)
        last = np.minimum(first + rng.integers(0, max(n // 3, 1), 200), n - 1)
        p_hat, votes = gt.vote_percentile(first, last, n)
        ref = ref_votes(list(zip(first.tolist(), last.tolist(), strict=True)), n)
        assert votes.tolist() == ref
        assert p_hat == ref.index(max(ref))
    # Exact ends: n = 3, index 1 spans 33.3 %, which contains no integer; ties -> lowest p.
    assert gt.vote_percentile([1], [1], 3)[1].sum() == 0
    p_hat, votes = gt.vote_percentile([9, 5, 0], [9, 5, 0], 10)
    assert p_hat == 0 and votes.nonzero()[0].tolist() == [0, 50, 90]
    assert gt.vote_percentile([0, 0, 9], [9, 9, 9], 10)[1][100] == 0  # 100 needs i_last = N
    assert gt.vote_percentile([1], [2], 3)[1].nonzero()[0].tolist() == list(range(34, 67))


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 100, 101])
def test_percentile_is_exact(engine, n):
    rng = np.random.default_rng(n)
    x = rng.integers(0, 256, (n, 40)).astype(np.uint8)
    x[:, :10] = np.sort(rng.integers(0, 3, (n, 10)) * 100, axis=0)  # gaps of 100: x.y9999 bites
    for p in range(101):
        k, r = divmod(p * (n - 1), 100)
        got = gt._percentile(x, k, r, engine=engine, tile=13)
        ref = [ref_percentile(x[:, e].tolist(), p) for e in range(x.shape[1])]
        assert got.tolist() == ref, p
        # np.percentile in float64 can fall a hair under an exact integer; with that forgiven
        # it agrees everywhere.
        assert np.array_equal(got, np.floor(np.percentile(x, p, axis=0) + 1e-9).astype(np.uint8))


def test_percentile_where_float_rounding_bites():
    x = np.array([[0], [100]], np.uint8)
    assert gt.percentile_image(x, 29).tolist() == [29]  # np.percentile: 28.999999999999996
    assert gt.percentile_image(x, 57).tolist() == [57]
    frames = np.random.default_rng(1).integers(0, 256, (9, 4, 5, 3), dtype=np.uint8)
    ref = np.floor(np.percentile(frames, 40, axis=0) + 1e-9)
    assert np.array_equal(gt.percentile_image(frames, 40), ref)
    with pytest.raises(ValueError, match="p must be"):
        gt.percentile_image(frames, 101)
    with pytest.raises(ValueError, match="p must be"):
        gt.percentile_image(frames, 40.5)


def test_numba_luma_is_exact_for_every_colour():
    nb = pytest.importorskip("rainset._gt_numba")
    gb = np.stack(np.meshgrid(np.arange(256), np.arange(256), indexing="ij"), -1).reshape(-1, 2)
    for r in range(256):
        rgb = np.concatenate([np.full((gb.shape[0], 1), r), gb], axis=1).astype(np.uint8)
        assert np.array_equal(nb.luma_of(rgb.reshape(1, -1))[0], rgb_to_luma(rgb)), r


# --- the whole estimator ------------------------------------------------------------------------


@pytest.mark.parametrize("select", ["luma", "rgb"])
@pytest.mark.parametrize("n", [9, 12])
def test_estimate_matches_reference(engine, select, n):
    frames = rainy_stack(n, 5, 7, seed=n)
    res = gt._estimate(frames, select=select, method="spa", engine=engine, tile_rows=2)
    p, votes, image, idx, modes = ref_estimate(frames, select)
    assert res.p_hat == p
    assert res.votes.tolist() == votes
    assert np.array_equal(res.image, image)
    assert np.array_equal(res.mode_index, idx)
    assert np.array_equal(res.mode, modes)
    assert res.n_frames == n and res.select == select and res.method == "spa"


@pytest.mark.parametrize("n", [1, 2, 9, 12])
def test_robust_matches_reference(engine, n):
    frames = rainy_stack(n, 4, 6, seed=n + 100)
    frames[:, 0, 0] = 77  # constant pixel: MAD 0, sigma floored at 1
    got = gt._estimate(frames, select="luma", method="robust", engine=engine, tile_rows=1).image
    ref = np.array(
        [
            ref_robust(frames[:, i, j, c].tolist())
            for i in range(4)
            for j in range(6)
            for c in range(3)
        ]
    ).reshape(4, 6, 3)
    assert np.array_equal(got, ref)


def test_robust_threshold_table_is_the_float_formula():
    tab = gt.robust_threshold_table(2.5)
    for med2, mad4 in [(0, 0), (1, 3), (200, 7), (201, 400), (510, 1020), (77, 2)]:
        med, mad = med2 / 2, mad4 / 4
        assert tab[med2, mad4] == min(math.floor(med + 2.5 * max(1.4826 * mad, 1.0)), 255)
    with pytest.raises(ValueError, match="k must be"):
        gt.robust_threshold_table(0)


def test_engines_agree_on_a_larger_stack():
    """Several tiles, ragged tile ends and T > 255 (the uint8 counters' second block)."""
    pytest.importorskip("numba")
    frames = rainy_stack(260, 23, 41, seed=5)
    frames[:, :3] = rainy_stack(260, 3, 41, seed=6, levels=4)
    engines = ["numba", "numpy"] + (["torch-cpu"] if importlib.util.find_spec("torch") else [])
    for select, method in [("luma", "spa"), ("rgb", "spa"), ("luma", "robust")]:
        results = [
            gt._estimate(frames, select=select, method=method, engine=e, tile_rows=3)
            for e in engines
        ]
        for r in results[1:]:
            assert np.array_equal(r.image, results[0].image), (select, method)
            assert r.p_hat == results[0].p_hat
            if method == "spa":
                assert np.array_equal(r.votes, results[0].votes)
                assert np.array_equal(r.mode_index, results[0].mode_index)


def test_strided_views_are_used_without_copy():
    nb = pytest.importorskip("rainset._gt_numba")
    frames = rainy_stack(11, 6, 5, seed=3)
    for view in (frames[::2], frames[1::2], frames[2:9:3]):
        x = view.reshape(view.shape[0], -1)
        span, rows = nb.as_rows(x)
        assert np.shares_memory(span, frames) and np.array_equal(span[rows], x)
        a = gt.estimate_clean(view)
        b = gt.estimate_clean(np.ascontiguousarray(view))
        assert np.array_equal(a.image, b.image) and a.p_hat == b.p_hat


def test_golden_tiny_stack():
    data = json.loads(GOLDEN.read_text())
    frames = np.array(data["frames"], np.uint8)
    assert frames.shape == (7, 3, 4, 3)
    for case in data["cases"]:
        stack = frames[: case["n"]]
        if case["method"] == "robust":
            ref = np.array(
                [
                    ref_robust(stack[:, i, j, c].tolist())
                    for i in range(3)
                    for j in range(4)
                    for c in range(3)
                ]
            )
            assert ref.reshape(3, 4, 3).tolist() == case["image"]  # the golden is right
        else:
            p, votes, image, *_ = ref_estimate(stack, case["select"])
            assert (p, image.tolist()) == (case["p_hat"], case["image"])  # the golden is right
        res = gt.estimate_clean(stack, select=case["select"], method=case["method"])
        assert res.image.tolist() == case["image"]
        assert res.p_hat == case["p_hat"]


# --- quality beyond the paper -------------------------------------------------------------------


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2))


def test_robust_beats_spa_on_a_composite():
    """Smooth static scene + sensor noise (sigma 2) + bright rain in ~10 % of frames per pixel."""
    rng = np.random.default_rng(7)
    h, w, n = 32, 48, 100
    clean = cv2.resize(
        rng.uniform(40, 200, (h // 8, w // 8, 3)), (w, h), interpolation=cv2.INTER_LINEAR
    )
    rain = (rng.random((n, h, w, 1)) < 0.1) * rng.uniform(30, 120, (n, h, w, 1))
    frames = np.clip(np.rint(clean + rng.normal(0, 2, (n, h, w, 3)) + rain), 0, 255).astype(
        np.uint8
    )
    spa = psnr(gt.estimate_clean(frames).image, clean)
    robust = psnr(gt.estimate_clean(frames, method="robust").image, clean)
    # Measured (seeds 0-7): spa 55.1-56.1 dB, robust 56.8-57.0 dB, 0.9-1.7 dB apart.
    assert robust > spa + 0.5, (spa, robust)


# --- API, devices, errors -----------------------------------------------------------------------


def test_result_fields_and_ranges():
    frames = rainy_stack(10, 3, 4, seed=1)
    res = gt.estimate_clean(frames)
    assert res.select == "luma" and res.method == "spa"  # the defaults: the paper's notebook
    assert res.image.shape == (3, 4, 3) and res.image.dtype == np.uint8
    assert res.mode_index.shape == (3, 4, 2) and res.mode.shape == (3, 4)
    assert res.votes.shape == (101,) and res.votes.dtype == np.int64
    assert np.array_equal(res.ranges, res.mode_index.astype(np.float32) * 100 / 10)
    assert res.ranges.dtype == np.float32
    rgb = gt.estimate_clean(frames, select="rgb")
    assert rgb.mode_index.shape == (3, 4, 3, 2) and rgb.ranges.shape == (3, 4, 3, 2)
    rob = gt.estimate_clean(frames, method="robust")
    assert rob.p_hat is None and rob.votes is None and rob.ranges is None
    assert np.array_equal(gt.robust_mean(frames), rob.image)


def test_bad_arguments():
    frames = rainy_stack(4, 3, 4, seed=1)
    for bad, match in [
        (frames.astype(np.float32), "uint8"),
        (frames[..., :2], r"\(T, H, W, 3\)"),
        (frames[0], r"\(T, H, W, 3\)"),
        (frames[:0], "T >= 1"),
    ]:
        with pytest.raises(ValueError, match=match):
            gt.estimate_clean(bad)
    with pytest.raises(ValueError, match="select"):
        gt.estimate_clean(frames, select="y")
    with pytest.raises(ValueError, match="method"):
        gt.estimate_clean(frames, method="median")
    with pytest.raises(ValueError, match="device"):
        gt.estimate_clean(frames, device="gpu")
    with pytest.raises(ValueError, match="tile_rows"):
        gt.estimate_clean(frames, tile_rows=0)
    with pytest.raises(ValueError, match="at most 65535"):
        gt.estimate_clean(np.zeros((65536, 1, 1, 3), np.uint8))
    with pytest.raises(ValueError, match="first <= last"):
        gt.vote_percentile([2], [1], 5)
    with pytest.raises(ValueError, match="k must be"):
        gt.robust_mean(frames, k=-1)


def test_device_selection(monkeypatch):
    cpu = gt._cpu_engine()
    assert gt._engine("cpu") == cpu
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    assert gt._engine("auto") == cpu
    with pytest.raises(RainsetError, match="needs PyTorch"):
        gt._engine("cuda")


def test_cuda_device_without_a_gpu_is_a_clear_error():
    torch = _torch()
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert gt._engine("auto") == gt._cpu_engine()
    with pytest.raises(RainsetError, match="no CUDA device"):
        gt.estimate_clean(rainy_stack(3, 2, 2, seed=0), device="cuda")


def test_cuda_matches_cpu_when_present():
    torch = _torch()
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    frames = rainy_stack(30, 17, 19, seed=2)
    for select, method in [("luma", "spa"), ("rgb", "spa"), ("luma", "robust")]:
        a = gt.estimate_clean(frames, select=select, method=method, device="cuda", tile_rows=5)
        b = gt.estimate_clean(frames, select=select, method=method)
        assert np.array_equal(a.image, b.image) and a.p_hat == b.p_hat


def test_numpy_fallback_without_numba(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "numba" else real(name, *a)
    )
    assert gt._cpu_engine() == "numpy"


def test_frame_stack_grows_without_copies():
    frames = rainy_stack(12, 3, 4, seed=2)
    stack = gt.FrameStack(10, 3, 4)
    assert stack.extend(iter(frames[:6])) == 6 and len(stack) == 6
    before = stack.frames
    stack.append(frames[6])
    assert np.shares_memory(before, stack.frames) and stack.frames.shape == (7, 3, 4, 3)
    assert stack.extend(iter(frames[7:])) == 3 and len(stack) == stack.capacity == 10
    assert np.array_equal(stack.frames, frames[:10])
    with pytest.raises(ValueError, match="full"):
        stack.append(frames[0])
    assert stack.extend(iter(frames)) == 0
    with pytest.raises(ValueError, match="frame must be"):
        gt.FrameStack(2, 3, 4).append(frames[0, :2])
    with pytest.raises(ValueError, match="capacity"):
        gt.FrameStack(0, 3, 4)
    a = gt.estimate_clean(stack.frames)
    assert np.array_equal(a.image, gt.estimate_clean(frames[:10].copy()).image)
