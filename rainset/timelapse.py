"""Static segments in rainy footage: per-frame scores, segments, frame choice, pairs.

The time-lapse deraining paper trains on sequences "in which both camera and scenes are static
except for time-varying rain streaks" and says it "extracted the static part" of public rainy
videos without saying how (time-lapse seed, Sec. III-D). This module finds that part and says
why it kept or rejected each stretch (ARCHITECTURE.md sec. 4).

Every frame is scored on downscaled luma after a temporal median of three frames (itself and
its neighbours; the first and last frames take the first and last three), so a rain streak
(rarely on one pixel in two consecutive frames) barely moves any score:

``dx, dy``, ``response``, ``confidence``
    Camera motion against the reference of the current run (its first frame), in
    full-resolution pixels, measured by the one estimator and judged by the one policy of
    :mod:`rainset.motion` (the same as build-gt's): a similarity fitted to the sub-pixel phase
    correlation of a 3 x 3 grid of tiles, so a passing car or a swaying branch in a few tiles
    does not move it; a frame too featureless or rain-dominated to measure has confidence
    below the policy's and does not count as motion.
``spread``
    The largest displacement (the policy's figure: the largest movement the fitted model gives
    a tile centre) of the run so far. A frame displaced by more than ``max_shift`` starts a new
    run.
``cut``
    ``1 - NCC`` between consecutive smoothed frames further reduced to about 64 pixels wide,
    after undoing their whole-pixel shift when the plain score is high: near 0 within a shot
    (even during a fast pan), near 1 across a cut. Normalised cross-correlation ignores gain
    and offset, so a light change is not a cut.
``illumination``
    Relative change of the mean luma against the run's reference (the denominator is floored
    at 16 levels so noise in near-black night footage is not a "change").
``foreground``
    Fraction of pixels differing by more than ``foreground_level`` from the temporal median of
    the frame's chunk (a run, cut into chunks of at most ``chunk`` frames), after gain
    compensation, on the smoothed image at half the analysis resolution. A car passing a static
    camera is foreground; it does not end a run.
``deviation``
    Mean absolute difference from that median, in levels: the "consistent" frame choice picks
    the lowest.

A run ends at a cut, when a frame's displacement exceeds ``max_shift``, or when the illumination
change exceeds ``max_illumination``; frames whose foreground fraction exceeds
``max_foreground`` are dropped from it. Maximal remaining pieces of at least ``N`` frames are
the kept segments; every other stretch gets a reason.

About 650 lines: the scores above share one streaming pass over the frames; the motion
estimator is :mod:`rainset.registration`'s, the policy :mod:`rainset.motion`'s.
"""

from __future__ import annotations

import csv
import functools
import itertools
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Literal

import cv2
import numpy as np

from rainset.fsutil import atomic_path
from rainset.options import N_FRAMES, StaticConfig  # noqa: F401 - the options live there
from rainset.registration import (
    PEAK_SIGMA,  # noqa: F401
    SHARED,
    AnalysisStream,
    Registrar,
    _fast_len,  # noqa: F401
    _fft,
    _grid_tiles,  # noqa: F401
    _median3,
    counts_as_moving,
    mean_level,
    phase_shifts,  # noqa: F401
    register_analysis,
)

logger = logging.getLogger(__name__)

#: Break reasons written in ``FrameScore.flag`` and rejection reasons (with "too short").
REASONS = ("cut", "moving camera", "illumination change", "too much foreground", "too short")
_PRIORITY = {r: i for i, r in enumerate(REASONS)}  # ties between reasons: earlier wins


@dataclass(frozen=True)
class FrameScore:
    """Scores of one frame (one row of the stats CSV).

    Attributes
    ----------
    index : frame index in the source (0-based).
    run : number of the run the frame belongs to (a new run starts at every break).
    dx, dy : camera shift against the run's reference, full-resolution pixels (+x right, +y
        down). On a frame that starts a run: its shift against the previous run's reference.
    spread : bounding-box diagonal of the run's shifts up to this frame (same caveat).
    response : median phase-correlation peak over the agreeing tiles (1 = identical, ~0 =
        unrelated; 0 when the frame is not measured).
    cut : ``1 - NCC`` against the previous frame.
    brightness : mean luma of the smoothed analysis image, 0..255.
    illumination : relative luma change against the run's reference.
    foreground : fraction of foreground pixels, 0..1.
    deviation : mean absolute difference from the chunk median, luma levels.
    flag : ``""``, or why this frame is not part of the previous run ("cut", "moving camera",
        "illumination change") or is dropped ("too much foreground").
    confidence : share of the 9 tiles that agree on the motion; 0 when the frame could not
        be measured (too little texture, too much rain, or one of the two frames right after
        the run's reference, whose smoothing shares its rain): such a frame never counts as motion.
    """

    index: int
    run: int
    dx: float
    dy: float
    spread: float
    response: float
    cut: float
    brightness: float
    illumination: float
    foreground: float = 0.0
    deviation: float = 0.0
    flag: str = ""
    confidence: float = 1.0


# ----------------------------------------------------------------------------- measurements


# The shift estimator (phase_shifts, the tiles, the median of three) is in
# rainset.registration: one estimator for every pipeline; its names stay importable from here.


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float32) - mean_level(a)
    b = b.astype(np.float32) - mean_level(b)
    den = math.sqrt(float(np.vdot(a, a)) * float(np.vdot(b, b)))
    return float(np.vdot(a, b)) / den if den > 0 else 1.0


def _aligned_ncc(a: np.ndarray, b: np.ndarray) -> float:
    """NCC of two images after undoing their whole-pixel shift (phase correlation), over the
    overlap; the plain NCC when the shift is over a quarter of the image or does not help."""
    h, w = a.shape
    fft = _fft()  # scipy.fft, imported on the first such frame (rainset.registration)
    fa = fft.rfft2(a.astype(np.float32) - float(a.mean()))
    fb = fft.rfft2(b.astype(np.float32) - float(b.mean()))
    cross = fb * np.conj(fa)
    r = fft.irfft2(cross / (np.abs(cross) + 1e-12), s=(h, w))
    dy, dx = np.unravel_index(int(r.argmax()), r.shape)
    dy, dx = (dy - h if dy > h // 2 else dy), (dx - w if dx > w // 2 else dx)
    plain = _ncc(a, b)
    if abs(dy) > h // 4 or abs(dx) > w // 4:
        return plain
    oa = a[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    ob = b[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
    return max(plain, _ncc(oa, ob))


#: Longest side of the image the cut score compares. So coarse, motion of a few analysis
#: pixels per frame (a pan) barely lowers the correlation while a different shot still does:
#: on the real clips of ../shared/data, 1 - NCC stayed under 0.07 within shots and above 0.5
#: between the last and first frames of different clips.
_CUT_SIDE = 64

#: Mean absolute difference (levels, after gain compensation) of the coarse images below which
#: two frames are never a cut, whatever their NCC: on a featureless scene (a wall, fog) under
#: dense rain the correlation of what little structure there is is the rain's, and 1 - NCC
#: reads 0.4-0.5 between consecutive frames of one static shot, which differ by up to 7 levels
#: (tests/test_motion_policy.py); cuts between the generated scenes differ by 30-40.
_CUT_LEVEL = 10.0


def _mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float32), b.astype(np.float32)
    mb = float(b.mean())
    gain = float(a.mean()) / mb if mb > 0 else 1.0
    return float(np.abs(a - b * np.float32(gain)).mean())


@functools.cache
def _median_network(n: int) -> tuple[tuple[int, int], ...]:
    """Compare-exchanges ``(i, j)``, ``i < j``, after which positions ``(n - 1) // 2`` and
    ``n // 2`` of ``n`` values hold the middle ones in sorted order: Batcher's odd-even merge
    sort on the next power of two (the positions past ``n`` taken as +inf, so that their
    exchanges do nothing), less every exchange those two positions do not depend on
    (113 for 25 values)."""
    size = 1 << max(0, (n - 1).bit_length())
    pairs, p = [], 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    need, kept = {(n - 1) // 2, n // 2}, []
    for a, b in reversed([(a, b) for a, b in pairs if b < n]):
        if a in need or b in need:
            kept.append((a, b))
            need |= {a, b}
    return tuple(reversed(kept))


def _stack_median(imgs: list[np.ndarray]) -> np.ndarray:
    """``np.median(np.stack(imgs), axis=0).astype(np.float32)`` of uint8 images, the same
    array, by a selection network of per-pixel minima and maxima: 0.2 ms for 25 images of
    180 x 120 against 6.7 ms (numpy partitions every pixel's values apart)."""
    n = len(imgs)
    x = [img.copy() for img in imgs]
    spare = np.empty_like(x[0])
    for a, b in _median_network(n):
        np.minimum(x[a], x[b], out=spare)
        np.maximum(x[a], x[b], out=x[b])
        x[a], spare = spare, x[a]
    m = n // 2
    if n % 2:
        return x[m].astype(np.float32)
    return (x[m - 1].astype(np.float32) + x[m]) * np.float32(0.5)  # exact: numpy's mean of two


class StaticScorer:
    """Streaming per-frame scorer: feed frames in order, collect :class:`FrameScore` rows.

    Memory is one half-resolution analysis image per frame of the current foreground chunk (at
    most ``config.chunk``), whatever the length of the video.

    Examples
    --------
    >>> scorer = StaticScorer(StaticConfig())  # doctest: +SKIP
    >>> rows = [r for f in frames for r in scorer.update(f)] + scorer.finish()  # doctest: +SKIP
    """

    def __init__(self, config: StaticConfig = StaticConfig()) -> None:
        self.config = config
        self.factor: int | None = None
        self._stream = AnalysisStream(config.policy)
        self._raw: list[np.ndarray] = []  # the last two unsmoothed analysis images
        self._n_in = 0
        self._n_done = 0
        self._prev: np.ndarray | None = None  # previous smoothed image, cut-score scale
        self._policy = config.policy
        self._reg: Registrar | None = None  # the motion estimator, against the run's reference
        self._ref_index = 0
        self._spread = 0.0  # largest displacement of the run so far
        self._run = -1
        self._chunk: list[tuple[dict, np.ndarray]] = []

    def _small(self, frame: np.ndarray) -> np.ndarray:
        # The one analysis-image stream of rainset.registration (checks, downscale factor).
        self._stream.n_in = self._n_in
        img = self._stream.small(frame)
        self.factor = self._stream.factor
        return img

    def update(self, frame: np.ndarray) -> list[FrameScore]:
        """Add the next frame; returns the rows that became final (possibly none).

        Parameters
        ----------
        frame : (H, W, 3) uint8 ndarray, RGB, the same size as the first one; or a frame of
            :func:`rainset._analysis_frames.iter_decoded`, scored on its luma plane (no RGB
            conversion; what ``rainset pairs`` does).
        """
        self._raw.append(self._small(frame))
        self._n_in += 1
        if len(self._raw) < 3:
            return []
        self._raw = self._raw[-3:]
        if self._n_done == 0:
            # No frame before the first: it takes the median of the first three, as the second
            # does (a repeated first frame would keep all its rain).
            first = _median3(*self._raw)
            return self._score(first) + self._score(first)
        return self._score(_median3(*self._raw))

    def finish(self) -> list[FrameScore]:
        """Score the last frame and flush the open chunk; returns the remaining rows."""
        out: list[FrameScore] = []
        if self._n_done < self._n_in:
            if len(self._raw) < 3:  # one or two frames in all: each is its own
                for raw in self._raw[self._n_done :]:
                    out += self._score(raw)
            else:  # no frame after the last: the median of the last three
                out += self._score(_median3(*self._raw))
        out += self._flush()
        return out

    def _score(self, img: np.ndarray) -> list[FrameScore]:
        cfg = self.config
        index = self._n_done
        self._n_done += 1
        if self._reg is None:
            self._reg = Registrar(self._policy, self.factor, img.shape)
        fft = self._reg.transform(img)
        brightness = mean_level(img)
        row = {"index": index, "run": self._run, "brightness": brightness}
        flag = "start"
        dx = dy = spread = illumination = cut = 0.0
        response = confidence = 1.0
        h, w = img.shape
        c = max(1, max(h, w) // _CUT_SIDE)
        coarse = cv2.resize(img, (w // c, h // c), interpolation=cv2.INTER_AREA) if c > 1 else img
        if self._prev is not None:
            cut = max(0.0, 1.0 - _ncc(self._prev, coarse))
            if cut > cfg.max_cut:  # maybe a fast pan, not a cut: compare after aligning
                cut = max(0.0, 1.0 - _aligned_ncc(self._prev, coarse))
            if cut > cfg.max_cut and _mean_difference(self._prev, coarse) < _CUT_LEVEL:
                cut = 0.0  # featureless and unchanged: rain, not a different shot
            m = self._reg.measure(
                img, index, fft, shared=index - self._ref_index <= SHARED, brightness=brightness
            )
            dx, dy, response, illumination = m.dx, m.dy, m.response, m.drift
            confidence = m.confidence if m.measured else 0.0
            moving = counts_as_moving(m, self._policy)
            if cfg.stabilize:  # shake is registered away: only what registration cannot undo
                moving = m.measured and m.displacement > self._policy.max_correction
            spread = max(self._spread, m.displacement if m.measured else 0.0)
            if cut > cfg.max_cut:
                flag = "cut"
            elif moving:
                flag = "moving camera"
            elif abs(illumination) > cfg.max_illumination:
                flag = "illumination change"
            else:
                flag = ""
                self._spread = spread
        self._prev = coarse
        out: list[FrameScore] = []
        if flag:  # a new run starts here, with this frame as its reference
            out = self._flush()
            self._run += 1
            self._reg.set_reference(img, fft)
            self._ref_index, self._spread = index, 0.0
        row.update(
            run=self._run, dx=dx, dy=dy, spread=spread, response=response, cut=cut,
            illumination=illumination, flag="" if flag == "start" else flag, confidence=confidence,
        )  # fmt: skip
        # Foreground statistics at half the analysis resolution: a quarter of the pixels to
        # take medians over and to keep, plenty for "what share of the frame moves".
        half = cv2.resize(img, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
        if cfg.stabilize and flag == "" and m.measured:  # compare frames registered to the run's reference
            half = register_analysis(half, m, 2 * self.factor, cfg.stabilize)
        self._chunk.append((row, half))
        if len(self._chunk) >= cfg.chunk:
            out += self._flush()
        return out

    def _flush(self) -> list[FrameScore]:
        """Foreground and deviation of the open chunk against its temporal median."""
        if not self._chunk:
            return []
        cfg = self.config
        imgs = [img for _, img in self._chunk]
        n = len(imgs)
        if n <= 2:  # a camera on the move starts a run at every frame: keep that cheap
            median = np.mean(np.stack(imgs), axis=0, dtype=np.float32)
        elif n == 3:
            median = _median3(*imgs).astype(np.float32)
        else:
            pick = np.unique(np.linspace(0, n - 1, min(n, 25)).round().astype(int))
            median = _stack_median([imgs[i] for i in pick])
        m_bright = float(median.mean())
        out = []
        for row, img in self._chunk:
            mean = mean_level(img)
            gain = np.float32(m_bright / mean if mean > 0 else 1.0)
            diff = np.abs(img.astype(np.float32) * gain - median)
            row["foreground"] = float(np.count_nonzero(diff > cfg.foreground_level)) / diff.size
            row["deviation"] = float(diff.mean())
            if not row["flag"] and row["foreground"] > cfg.max_foreground:
                row["flag"] = "too much foreground"
            out.append(FrameScore(**row))
        self._chunk = []
        return out


def score_frames(
    frames: Iterable[np.ndarray], *, config: StaticConfig = StaticConfig()
) -> Iterator[FrameScore]:
    """Score every frame of a sequence (streaming; see :class:`StaticScorer`).

    Parameters
    ----------
    frames : iterable of (H, W, 3) uint8 ndarray, RGB, one size throughout.
    config : thresholds and analysis size.

    Yields
    ------
    score : FrameScore, in frame order (a few frames behind the input: each chunk is scored
        when it closes).
    """
    scorer = StaticScorer(config)
    for frame in frames:
        yield from scorer.update(frame)
    yield from scorer.finish()


# ----------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class Segment:
    """A kept static stretch, frames ``start .. stop - 1``.

    ``begins`` / ``ends`` say what bounds it: a reason from :data:`REASONS`, or ``"start"`` /
    ``"end"`` of the footage.
    """

    start: int
    stop: int
    begins: str
    ends: str

    @property
    def length(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Rejection:
    """A stretch, frames ``start .. stop - 1``, in no segment; ``reason`` is from
    :data:`REASONS`, ``detail`` one human sentence with the evidence."""

    start: int
    stop: int
    reason: str
    detail: str


def find_segments(
    scores: Sequence[FrameScore], *, min_length: int = N_FRAMES
) -> tuple[list[Segment], list[Rejection]]:
    """Split scored frames into kept static segments and rejected stretches.

    Parameters
    ----------
    scores : the rows of :func:`score_frames` for one source, in order, indices 0..T-1.
    min_length : shortest kept segment (the number of frames you will take from each).

    Returns
    -------
    segments : list of Segment, maximal pieces of one run without foreground-flagged frames
        and at least ``min_length`` long.
    rejections : list of Rejection covering every other frame, maximal stretches. The reason
        is the most common break inside the stretch (a cut, a camera move, a light change
        after its first frame, or a frame with too much foreground); a stretch without any is
        one clean piece that is "too short".
    """
    if min_length < 1:
        raise ValueError(f"min_length must be >= 1, got {min_length}")
    n = len(scores)
    if any(s.index != i for i, s in enumerate(scores)):
        raise ValueError("scores must be the rows of one source in order, indices 0..T-1")
    fg = "too much foreground"
    pieces: list[tuple[int, int]] = []
    i = 0
    while i < n:
        if scores[i].flag == fg:
            i += 1
            continue
        j = i + 1
        while j < n and scores[j].run == scores[i].run and scores[j].flag != fg:
            j += 1
        pieces.append((i, j))
        i = j
    kept = [(a, b) for a, b in pieces if b - a >= min_length]
    segments = [
        Segment(a, b, _bound(scores, a, "start"), _bound(scores, b, "end")) for a, b in kept
    ]
    rejections = []
    edges = [0] + [x for ab in kept for x in ab] + [n]
    for a, b in zip(edges[::2], edges[1::2]):
        if b > a:
            longest = max((y - x for x, y in pieces if a <= x and y <= b), default=0)
            rejections.append(_reject(scores, a, b, min_length, longest))
    return segments, rejections


def _bound(scores: Sequence[FrameScore], i: int, outside: str) -> str:
    """What separates frame ``i`` from frame ``i - 1`` (for a segment starting or ending)."""
    if i <= 0 or i >= len(scores):
        return outside
    return scores[i].flag or "too much foreground"  # only fg-dropped frames end a run silently


def _reject(
    scores: Sequence[FrameScore], a: int, b: int, min_length: int, longest: int
) -> Rejection:
    fg = "too much foreground"
    # Events inside the stretch: breaks after its first frame (the first frame's own break is
    # why the stretch begins, not why it was rejected) and every foreground-dropped frame.
    events = [s for s in scores[a:b] if s.flag and (s.index > a or s.flag == fg)]
    if not events:
        detail = (
            f"one static piece of {b - a} frames (need {min_length}), between "
            f"{_bound(scores, a, 'start')} at {a} and {_bound(scores, b, 'end')} at {b}"
        )
        return Rejection(a, b, "too short", detail)
    counts = Counter(s.flag for s in events)
    reason = min(counts, key=lambda r: (-counts[r], _PRIORITY[r]))
    hits = [s for s in events if s.flag == reason]
    if reason == "moving camera":
        step = max(s.spread for s in hits)  # the policy's displacement (zoom and turn included)
        detail = (
            f"camera moved at {len(hits)} frames, up to {step:.1f} px from the reference"
            if math.isfinite(step)
            else f"camera moved at {len(hits)} frames, the picture changing beyond measuring"
        )
    elif reason == "cut":
        detail = f"{len(hits)} cut(s), at frame " + ", ".join(str(s.index) for s in hits[:5])
    elif reason == "illumination change":
        worst = max(abs(s.illumination) for s in hits)
        detail = f"light changed at {len(hits)} frames, by up to {100 * worst:.0f} %"
    else:
        worst = max(s.foreground for s in hits)
        detail = f"{len(hits)} frames with up to {100 * worst:.0f} % moving foreground"
    others = ", ".join(f"{n} {r}" for r, n in sorted(counts.items()) if r != reason)
    detail += f"; also {others}" if others else ""
    if longest:
        detail += f"; longest static piece {longest} frame{'s' if longest != 1 else ''}"
    return Rejection(a, b, reason, detail)


# ----------------------------------------------------------------------------- frames, pairs


def choose_frames(
    segment: Segment,
    n: int,
    *,
    select: Literal["even", "consistent"] = "even",
    scores: Sequence[FrameScore] | None = None,
) -> list[int]:
    """Pick ``n`` frame indices of a segment.

    Parameters
    ----------
    segment : the segment; it must hold at least ``n`` frames.
    n : frames to pick.
    select : ``"even"`` spreads them evenly from the first to the last frame; ``"consistent"``
        cuts the segment into ``n`` equal bins and takes from each the frame with the lowest
        ``deviation`` from the temporal median (the most consistent with the others, still
        spread over the segment so the rain differs).
    scores : the source's score rows (indexed by frame), needed for ``"consistent"``.

    Returns
    -------
    indices : sorted list of ``n`` distinct frame indices.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 (pairs need two frames), got {n}")
    if segment.length < n:
        raise ValueError(f"segment {segment.start}..{segment.stop} has fewer than {n} frames")
    if select == "even":
        return [int(x) for x in np.linspace(segment.start, segment.stop - 1, n).round()]
    if select != "consistent":
        raise ValueError(f"select must be 'even' or 'consistent', got {select!r}")
    if scores is None:
        raise ValueError("select='consistent' needs the scores")
    edges = np.linspace(segment.start, segment.stop, n + 1).astype(int)
    return [
        min(range(lo, hi), key=lambda i: (scores[i].deviation, i))
        for lo, hi in zip(edges[:-1], edges[1:])
    ]


def sample_pairs(
    n: int, *, k: int | None = None, rng: np.random.Generator | int | None = None
) -> list[tuple[int, int]]:
    """Unordered pairs ``(m, n)``, ``m < n``, of positions ``0 .. n - 1``: never a frame with itself.

    Parameters
    ----------
    n : frames in the sequence (the paper: 30, so C(30, 2) = 435 pairs).
    k : number of distinct pairs to draw; ``None`` (or ``k >= C(n, 2)``) gives all of them.
    rng : seed or generator for the draw.

    Returns
    -------
    pairs : list of (int, int), in lexicographic order.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    every = list(itertools.combinations(range(n), 2))
    if k is None or k >= len(every):
        return every
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    picked = np.random.default_rng(rng).choice(len(every), size=k, replace=False)
    return [every[i] for i in sorted(picked)]


def foreground_masks(
    frames: np.ndarray, *, factor: int = 3, level: int = StaticConfig.foreground_level
) -> np.ndarray:
    """Per-frame masks of what moves against the frames' temporal median.

    Parameters
    ----------
    frames : (N, H, W, 3) uint8 ndarray, RGB, the frames of one segment.
    factor : the comparison runs on frames downscaled by this factor (area average), which
        thins rain streaks out as the scores' analysis does.
    level : difference (8-bit levels, largest over R, G, B, after gain compensation) above
        which a pixel is foreground; colour catches a red car on a grey street of equal luma.

    Returns
    -------
    masks : (N, H, W) bool ndarray, True where something moved (a passing car, a swaying
        branch). Thin leftovers of rain are removed by a 3 x 3 opening and the masks are
        dilated by one analysis pixel to cover object borders.
    """
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    n, h, w, _ = frames.shape
    k = max(1, int(factor))
    size = (max(1, w // k), max(1, h // k))
    small = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    small = small.astype(np.float32)
    median = np.median(small, axis=0)
    m_bright = float(median.mean())
    kernel = np.ones((3, 3), np.uint8)
    masks = np.empty((n, h, w), bool)
    for i in range(n):
        gain = m_bright / max(float(small[i].mean()), 1e-3)
        diff = np.abs(small[i] * np.float32(gain) - median).max(axis=2)
        fg = (diff > level).astype(np.uint8)
        fg = cv2.dilate(cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel), kernel)
        masks[i] = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST) > 0
    return masks


# ----------------------------------------------------------------------------- stats CSV

#: Columns of the per-scene stats CSV: the FrameScore fields, time and status.
STATS_COLUMNS = (
    "index",
    "time",
    *(f.name for f in fields(FrameScore) if f.name != "index"),
    "status",
)


def write_stats_csv(
    path: str | os.PathLike,
    scores: Sequence[FrameScore],
    *,
    fps: float | None = None,
    status: Sequence[str] | None = None,
) -> None:
    """Write every score of every frame to a CSV (atomically), for tuning thresholds.

    Parameters
    ----------
    path : destination ``.csv``.
    scores : the rows of :func:`score_frames`.
    fps : frame rate, for the ``time`` column (seconds); empty when None.
    status : per frame, e.g. the segment id or ``"rejected: moving camera"``.
    """
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(STATS_COLUMNS)
        for i, s in enumerate(scores):
            d = asdict(s)
            d["time"] = f"{s.index / fps:.3f}" if fps else ""
            for key in ("dx", "dy", "spread", "illumination"):
                d[key] = f"{d[key]:.3f}"
            for key in ("response", "cut", "foreground", "confidence"):
                d[key] = f"{d[key]:.4f}"
            for key in ("brightness", "deviation"):
                d[key] = f"{d[key]:.2f}"
            d["status"] = status[i] if status is not None else ""
            out.writerow([d[c] for c in STATS_COLUMNS])


def read_stats_csv(path: str | os.PathLike) -> list[FrameScore]:
    """Read the score rows back from a stats CSV written by :func:`write_stats_csv`."""
    kinds = {f.name: f.type for f in fields(FrameScore)}
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for rec in csv.DictReader(f):
            d = {}
            for name, typ in kinds.items():
                v = rec.get(name)
                if v is None:  # a column an older rainset did not write: its default
                    continue
                d[name] = int(v) if typ == "int" else (v if typ == "str" else float(v))
            rows.append(FrameScore(**d))
    return rows
