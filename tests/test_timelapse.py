"""rainset.timelapse: shifts, scores, static segments, frame choice, pairs, masks, stats CSV."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from conftest import textured_background

from rainset.timelapse import (
    REASONS,
    FrameScore,
    Segment,
    StaticConfig,
    StaticScorer,
    _fast_len,
    _grid_tiles,
    choose_frames,
    find_segments,
    foreground_masks,
    phase_shifts,
    read_stats_csv,
    sample_pairs,
    score_frames,
    write_stats_csv,
)

H, W = 96, 128


def _rainy(img: np.ndarray, rng: np.random.Generator, streaks: int = 8) -> np.ndarray:
    f = img.astype(np.float32)
    for _ in range(streaks):  # short bright streaks, a new place every frame
        y, x = rng.integers(0, img.shape[0] - 8), rng.integers(0, img.shape[1])
        f[y : y + 8, x] += 80
    return np.clip(f + rng.normal(0, 1.5, f.shape), 0, 255).astype(np.uint8)


def structured_frames(seed: int = 0) -> tuple[list[np.ndarray], dict]:
    """A rainy clip with known structure (10 fps), and the answer.

    0-24 static | 25-34 pan 3 px/frame | 35-59 static (the panned view) | cut | 60-84 second
    scene | light x1.25 at 85 | 85-109 with a small car crossing | 110-121 a big object parks
    in the lower half (frames 113-118 fully in) | 122-134 static | cut | 135-142 short shot.
    """
    rng = np.random.default_rng(seed)
    canvas = textured_background(H + 40, W + 80, seed)
    s2 = textured_background(H, W, seed + 1)
    s3 = textured_background(H, W, seed + 2)
    bright = np.clip(s2.astype(np.float32) * 1.25, 0, 255)
    bus = textured_background(H // 2, W, seed + 3).astype(np.float32)
    bus = np.clip(bus - bus.mean() + bright.mean(), 0, 255)  # keeps the mean light steady
    frames = []
    frames += [_rainy(canvas[20 : 20 + H, 10 : 10 + W], rng) for _ in range(25)]
    frames += [_rainy(canvas[20 : 20 + H, 13 + 3 * t : 13 + 3 * t + W], rng) for t in range(10)]
    frames += [_rainy(canvas[20 : 20 + H, 43 : 43 + W], rng) for _ in range(25)]
    frames += [_rainy(s2, rng) for _ in range(25)]
    for t in range(25):
        f = bright.copy()
        f[40:56, 4 * t : 4 * t + 20] = (230, 40, 40)
        frames.append(_rainy(f, rng))
    for c in (0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25):
        f = bright.copy()
        w = round(c * W)
        f[H // 2 :, :w] = bus[:, W - w :]
        frames.append(_rainy(f, rng))
    frames += [_rainy(bright, rng) for _ in range(13)]
    frames += [_rainy(s3, rng) for _ in range(8)]
    truth = {
        "segments": [(0, 25), (35, 60), (60, 85), (85, 113), (119, 135)],
        "bounds": [
            ("start", "moving camera"),
            ("moving camera", "cut"),
            ("cut", "illumination change"),
            ("illumination change", "too much foreground"),
            ("too much foreground", "cut"),
        ],
        "rejections": [
            (25, 35, "moving camera"),
            (113, 119, "too much foreground"),
            (135, 143, "too short"),
        ],
    }
    return frames, truth


@pytest.fixture(scope="module")
def structured_video(tmp_path_factory):
    from rainset.video import write_video

    frames, truth = structured_frames()
    path = tmp_path_factory.mktemp("tl") / "structured.mp4"
    write_video(path, frames, fps=10, crf=10)
    return path, truth


# ----------------------------------------------------------------------------- shifts


@pytest.fixture(scope="module")
def fine_scene():
    """A 10x finer scene: whole-pixel shifts of it, area-downsampled, are exact 0.1 px shifts."""
    rng = np.random.default_rng(0)
    big = cv2.cvtColor(textured_background(1700, 2500, seed=3), cv2.COLOR_RGB2GRAY)
    detail = cv2.GaussianBlur(rng.normal(0, 40, big.shape).astype(np.float32), (0, 0), 4)
    return np.clip(big + detail, 0, 255)


@pytest.mark.parametrize("kx, ky", [(3, -17), (25, 0), (-6, 12), (-40, -33), (1, 7)])
def test_phase_shifts_recover_subpixel_translation(fine_scene, kx, ky):
    def view(x, y):  # the camera moved by (x, y) / 10 pixels of the 240 x 160 image
        crop = fine_scene[50 - y : 50 - y + 1600, 50 - x : 50 - x + 2400]
        return cv2.resize(crop, (240, 160), interpolation=cv2.INTER_AREA)

    ref_t, img_t = _grid_tiles(view(0, 0)), _grid_tiles(view(kx, ky))
    win = np.outer(np.hanning(ref_t.shape[1]), np.hanning(ref_t.shape[2])).astype(np.float32)
    s = phase_shifts(np.fft.rfft2(ref_t * win), np.fft.rfft2(img_t * win), ref_t.shape[1:])
    assert ref_t.shape[1:] == (50, 80)  # 53-row cells cropped to an FFT-friendly 50
    # The image is the reference moved by (+dx, +dy): positive x is right, positive y down.
    assert abs(np.median(s[:, 0]) - kx / 10) < 0.05
    assert abs(np.median(s[:, 1]) - ky / 10) < 0.05
    assert np.all(s[:, 2] > 0.3)


def test_config_factor_keeps_threshold_a_quarter_of_an_analysis_pixel():
    # The one policy's factor (rainset.motion.MotionPolicy.factor): powers of two.
    cfg = StaticConfig()
    assert cfg.factor(480, 720) == 2  # 360 x 240
    assert cfg.factor(1080, 1920) == 4  # 480 x 270
    assert cfg.factor(2160, 3840) == 4  # capped by max_shift = 1 px: 1 / 4 px
    assert cfg.factor(96, 128) == 1
    assert StaticConfig(max_shift=8).factor(2160, 3840) == 8  # 320 px long side: 12, down to 8
    assert StaticConfig(max_shift=0.3).factor(1080, 1920) == 1


@pytest.mark.parametrize("n, fast", [(53, 50), (80, 80), (7, 6), (1, 1), (121, 120), (97, 96)])
def test_fast_fft_lengths(n, fast):
    assert _fast_len(n) == fast


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_shift": 0},
        {"max_cut": -1},
        {"max_foreground": 0},
        {"foreground_level": 0},
        {"size": 8},
        {"chunk": 2},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        StaticConfig(**kwargs)


# ----------------------------------------------------------------------------- scorer


def _naive_scores(frames: list[np.ndarray], chunk: int, level: int) -> list[dict]:
    """Slow, obvious recomputation of brightness, cut, foreground and deviation (factor 1)."""
    small = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float64) for f in frames]
    n = len(small)
    # Each frame with its neighbours; the first and last with the first and last three.
    sm = [
        np.median(np.stack(small[min(max(i, 1), n - 2) - 1 : min(max(i, 1), n - 2) + 2]), axis=0)
        for i in range(n)
    ]
    rows = []
    for i in range(n):
        cut = 0.0
        if i:
            a, b = sm[i - 1] - sm[i - 1].mean(), sm[i] - sm[i].mean()
            cut = 1 - (a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum())
        rows.append({"brightness": sm[i].mean(), "cut": max(cut, 0.0)})
    half = [
        cv2.resize(
            x.astype(np.uint8), (x.shape[1] // 2, x.shape[0] // 2), interpolation=cv2.INTER_AREA
        )
        for x in sm
    ]
    half = [x.astype(np.float64) for x in half]
    for start in range(0, n, chunk):  # one run (a static clip): chunks of `chunk` frames
        block = half[start : start + chunk]
        pick = np.unique(np.linspace(0, len(block) - 1, min(len(block), 25)).round().astype(int))
        med = np.median(np.stack([block[p] for p in pick]), axis=0)
        for j, img in enumerate(block):
            d = np.abs(img * (med.mean() / img.mean()) - med)
            rows[start + j].update(foreground=(d > level).mean(), deviation=d.mean())
    return rows


def test_scorer_matches_naive_reference_on_a_static_clip():
    rng = np.random.default_rng(1)
    bg = textured_background(48, 60, seed=5)  # 60 px: analysis at full size, cut image too
    frames = [_rainy(bg, rng, streaks=3) for _ in range(13)]
    frames[6][10:30, 20:40] = (250, 250, 250)  # something in frame 6 only
    cfg = StaticConfig(chunk=5)
    got = list(score_frames(frames, config=cfg))
    want = _naive_scores(frames, chunk=5, level=cfg.foreground_level)
    assert [s.index for s in got] == list(range(13))
    assert all(s.run == 0 and s.flag == "" for s in got)
    for s, w in zip(got, want):
        assert s.brightness == pytest.approx(w["brightness"], abs=1e-3)
        assert s.cut == pytest.approx(w["cut"], abs=1e-4)
        assert s.foreground == pytest.approx(w["foreground"], abs=2e-3)  # float32 vs 64
        assert s.deviation == pytest.approx(w["deviation"], abs=1e-3)
    # The white block (14 % of the frame, in one frame only) does not survive the 3-frame
    # median: rain and one-frame events do not count as foreground.
    assert max(s.foreground for s in got) < 0.03


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_scorer_handles_very_short_inputs(n):
    rng = np.random.default_rng(0)
    bg = textured_background(32, 48)
    scores = list(score_frames([_rainy(bg, rng) for _ in range(n)]))
    assert [s.index for s in scores] == list(range(n))
    assert scores[0].flag == "" and scores[0].run == 0


def test_scorer_memory_is_bounded_by_the_chunk():
    rng = np.random.default_rng(0)
    bg = textured_background(32, 48)
    scorer = StaticScorer(StaticConfig(chunk=10))
    rows = []
    for _ in range(57):
        rows += scorer.update(_rainy(bg, rng))
        assert len(scorer._chunk) <= 10
    rows += scorer.finish()
    assert [r.index for r in rows] == list(range(57))


def test_scorer_rejects_bad_frames():
    scorer = StaticScorer()
    with pytest.raises(ValueError, match="uint8"):
        scorer.update(np.zeros((32, 32, 3), np.float32))
    scorer.update(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="earlier ones"):
        scorer.update(np.zeros((32, 30, 3), np.uint8))


def test_slow_light_ramp_splits_when_it_exceeds_the_bound():
    rng = np.random.default_rng(2)
    bg = textured_background(48, 64, seed=2).astype(np.float32) * 0.6
    frames = [_rainy(np.clip(bg * (1 + 0.01 * t), 0, 255), rng, streaks=2) for t in range(40)]
    scores = list(score_frames(frames))
    breaks = [s.index for s in scores if s.flag]
    assert breaks and all(scores[i].flag == "illumination change" for i in breaks)
    # +1 % a frame against the run's first frame: a new run about every 10 frames
    assert 2 <= len(breaks) <= 4
    assert all(abs(s.illumination) <= 0.1 for s in scores if not s.flag)


def test_structured_clip_gives_the_known_segments(structured_video):
    from rainset.video import iter_frames

    path, truth = structured_video
    scores = list(score_frames(iter_frames(path)))
    assert len(scores) == 143
    segments, rejections = find_segments(scores, min_length=10)
    assert len(segments) == len(truth["segments"])
    for seg, (a, b), bounds in zip(segments, truth["segments"], truth["bounds"]):
        assert abs(seg.start - a) <= 1 and abs(seg.stop - b) <= 1, (seg, a, b)
        assert (seg.begins, seg.ends) == bounds
    assert len(rejections) == len(truth["rejections"])
    for rej, (a, b, reason) in zip(rejections, truth["rejections"]):
        assert abs(rej.start - a) <= 1 and abs(rej.stop - b) <= 1, (rej, a, b)
        assert rej.reason == reason, rej
    # the small car in 85-109 is foreground but does not break its segment
    car = [s.foreground for s in scores[86:109]]
    assert 0.01 < max(car) < 0.3


# ----------------------------------------------------------------------------- segments


def _rows(runs: list[int], flags: dict[int, str] | None = None) -> list[FrameScore]:
    flags = flags or {}
    return [
        FrameScore(
            i,
            r,
            0.0,
            0.0,
            0.0,
            1.0,
            0.0,
            100.0,
            0.0,
            0.5 if flags.get(i) == REASONS[3] else 0.0,
            0.0,
            flags.get(i, ""),
        )
        for i, r in enumerate(runs)
    ]


@pytest.mark.parametrize("min_length", [1, 5, 12, 13, 40])
def test_segments_are_maximal_pieces_of_at_least_min_length(min_length):
    runs = [0] * 12 + [1] * 3 + [2] * 20 + [3] * 13
    flags = {
        12: "moving camera",
        15: "cut",
        35: "illumination change",
        20: REASONS[3],
        21: REASONS[3],
    }
    rows = _rows(runs, flags)
    segments, rejections = find_segments(rows, min_length=min_length)
    pieces = [(0, 12), (12, 15), (15, 20), (22, 35), (35, 48)]
    assert [(s.start, s.stop) for s in segments] == [p for p in pieces if p[1] - p[0] >= min_length]
    covered = sorted(
        [(s.start, s.stop) for s in segments] + [(r.start, r.stop) for r in rejections]
    )
    assert covered[0][0] == 0 and covered[-1][1] == 48
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))  # no gap, no overlap
    assert all(r.reason in REASONS for r in rejections)


def test_rejection_reasons():
    # static 0-9 | pan 10-14 (each frame a new run) | static 15-19 | 3 fg frames | static 23-32
    runs = [0] * 10 + [1, 2, 3, 4, 5] + [6] * 18
    flags = {i: "moving camera" for i in range(10, 16)} | {
        20: REASONS[3],
        21: REASONS[3],
        22: REASONS[3],
    }
    segments, rejections = find_segments(_rows(runs, flags), min_length=8)
    assert [(s.start, s.stop, s.begins, s.ends) for s in segments] == [
        (0, 10, "start", "moving camera"),
        (23, 33, "too much foreground", "end"),
    ]
    assert [(r.start, r.stop, r.reason) for r in rejections] == [(10, 23, "moving camera")]
    # a clean piece that is merely short is "too short"; a montage of short shots is "cut"
    runs = [0] * 5 + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 10
    flags = {5: "cut", 8: "cut", 11: "cut", 14: "cut"}
    segments, rejections = find_segments(_rows(runs, flags), min_length=10)
    assert [(s.start, s.stop) for s in segments] == [(14, 24)]
    assert [(r.start, r.stop, r.reason) for r in rejections] == [(0, 14, "cut")]
    _, rejections = find_segments(_rows([0] * 4 + [1] * 20, {4: "cut"}), min_length=10)
    assert [(r.start, r.stop, r.reason) for r in rejections] == [(0, 4, "too short")]
    assert "4 frames" in rejections[0].detail and "cut at 4" in rejections[0].detail


def test_find_segments_validates_input():
    with pytest.raises(ValueError):
        find_segments(_rows([0] * 5), min_length=0)
    with pytest.raises(ValueError, match="in order"):
        find_segments(_rows([0] * 5)[1:], min_length=2)
    assert find_segments([], min_length=3) == ([], [])


# ----------------------------------------------------------------------------- frames, pairs


@pytest.mark.parametrize("start, stop, n", [(0, 30, 30), (10, 49, 30), (5, 1000, 7), (3, 5, 2)])
def test_even_choice_spans_the_segment(start, stop, n):
    idx = choose_frames(Segment(start, stop, "start", "end"), n)
    assert len(idx) == n == len(set(idx)) and idx == sorted(idx)
    assert idx[0] == start and idx[-1] == stop - 1
    gaps = np.diff(idx)
    assert gaps.max() - gaps.min() <= 1


def test_consistent_choice_takes_the_lowest_deviation_per_bin():
    rng = np.random.default_rng(4)
    dev = rng.random(60)
    rows = [FrameScore(i, 0, 0, 0, 0, 1, 0, 100, 0, 0, float(dev[i]), "") for i in range(60)]
    seg = Segment(7, 52, "start", "end")
    idx = choose_frames(seg, 9, select="consistent", scores=rows)
    edges = np.linspace(7, 52, 10).astype(int)
    assert idx == [lo + int(np.argmin(dev[lo:hi])) for lo, hi in zip(edges[:-1], edges[1:])]
    with pytest.raises(ValueError):
        choose_frames(seg, 9, select="consistent")
    with pytest.raises(ValueError):
        choose_frames(Segment(0, 5, "start", "end"), 6)


def test_all_pairs_are_the_paper_count():
    pairs = sample_pairs(30)
    assert len(pairs) == 435 == math.comb(30, 2)  # 186 scenes x 435 = 80,910 (Sec. III-E)
    assert len(set(pairs)) == 435 and all(m < n for m, n in pairs)


def test_sampled_pairs_are_reproducible_and_never_self_pairs():
    a = sample_pairs(30, k=50, rng=7)
    assert a == sample_pairs(30, k=50, rng=7)
    assert a != sample_pairs(30, k=50, rng=8)
    assert len(a) == len(set(a)) == 50 and all(m < n < 30 for m, n in a)
    assert sample_pairs(5, k=100, rng=0) == sample_pairs(5)
    with pytest.raises(ValueError):
        sample_pairs(1)
    with pytest.raises(ValueError):
        sample_pairs(5, k=0)


# ----------------------------------------------------------------------------- masks, CSV


def test_foreground_masks_find_the_moving_object_not_the_rain():
    rng = np.random.default_rng(3)
    bg = textured_background(96, 128, seed=9)
    frames, boxes = [], []
    for t in range(12):
        f = bg.copy()
        x = 8 * t
        f[30:60, x : x + 24] = (240, 30, 30)
        boxes.append((slice(30, 60), slice(x, x + 24)))
        frames.append(_rainy(f, rng, streaks=12))
    masks = foreground_masks(np.stack(frames), factor=2)
    assert masks.shape == (12, 96, 128) and masks.dtype == bool
    for m, (ys, xs) in zip(masks, boxes):
        truth = np.zeros_like(m)
        truth[ys, xs] = True
        assert (m & truth).sum() / truth.sum() > 0.9  # the object is covered
        assert (m & ~truth).sum() < 0.1 * truth.sum() + 4 * 96  # and little else (borders)
    with pytest.raises(ValueError):
        foreground_masks(np.zeros((3, 8, 8), np.uint8))


def test_stats_csv_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    bg = textured_background(32, 48)
    scores = list(score_frames([_rainy(bg, rng) for _ in range(9)]))
    path = tmp_path / "s.csv"
    write_stats_csv(path, scores, fps=8, status=["x"] * 9)
    back = read_stats_csv(path)
    assert [b.index for b in back] == list(range(9))
    for a, b in zip(scores, back):
        assert b.run == a.run and b.flag == a.flag
        assert b.cut == pytest.approx(a.cut, abs=1e-4) and b.spread == pytest.approx(
            a.spread, abs=1e-3
        )
    header = path.read_text().splitlines()[0].split(",")
    assert header[:2] == ["index", "time"] and header[-1] == "status"
    assert path.read_text().splitlines()[2].split(",")[1] == "0.125"
