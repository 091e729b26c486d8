"""Human review of ground-truth candidates: decisions, the decisions file, the auto score.

A *candidate* is one clean image proposed for one window of one scene from N frames. A
reviewer answers with a :class:`Decision`: ``accept``, ``more`` (add frames: N grows by the
density step) or ``reject`` (the window is dropped, with the reason kept). Every decision is
stored in ``review.json`` in the output folder the moment it is made, so an interrupted run
resumes without asking any question twice and a second run with the same file reproduces the
dataset without asking (ARCHITECTURE.md sec. 3).

Front ends here are the non-interactive ones (accept, auto, file); the terminal prompt lives in
the command line, which owns the terminal.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from rainset import sheets
from rainset.errors import ReviewFileError
from rainset.fsutil import atomic_write_text
from rainset.options import MASK_THRESHOLD

log = logging.getLogger(__name__)

Action = Literal["accept", "more", "reject"]
ACTIONS: tuple[str, ...] = ("accept", "more", "reject")
REVIEW_VERSION = 1


@dataclass(frozen=True)
class Candidate:
    """One proposed clean image: scene, window, N frames, the image and where its sheet is."""

    scene: str
    window: int
    n_frames: int
    clean: np.ndarray
    preview: Path | None = None
    score: float | None = None
    can_grow: bool = True
    grow_limit: str = ""
    info: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return decision_key(self.scene, self.window, self.n_frames)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""
    by: str = "user"


def decision_key(scene: str, window: int, n_frames: int) -> str:
    """The stable key of one question: ``scene/w<window>/n<N>``."""
    return f"{scene}/w{window:02d}/n{n_frames}"


class Reviewer(Protocol):
    def __call__(self, candidate: Candidate) -> Decision: ...


class ReviewLog:
    """Decisions stored in a JSON file, written atomically after every decision.

    Parameters
    ----------
    path : the review file (``OUT/review.json``).
    params : the options that produced the candidates; a file made with other options is
        refused, since its answers were about other images.
    """

    def __init__(self, path: str | os.PathLike, *, params: dict):
        self.path = Path(path)
        self.params = params
        self.decisions: dict[str, dict] = {}
        if self.path.exists():
            data = _load(self.path)
            if data.get("params") != params:
                raise ReviewFileError(
                    f"{self.path} was written for other options ({_diff(data.get('params'), params)}); "
                    "use another output folder or delete the file to start the review over."
                )
            self.decisions = data["decisions"]

    def get(self, key: str) -> Decision | None:
        d = self.decisions.get(key)
        return None if d is None else Decision(d["action"], d.get("reason", ""), d.get("by", "user"))

    def record(self, candidate: Candidate, decision: Decision) -> None:
        self.decisions[candidate.key] = {
            "scene": candidate.scene,
            "window": candidate.window,
            "n_frames": candidate.n_frames,
            "action": decision.action,
            "reason": decision.reason,
            "by": decision.by,
            "score": candidate.score,
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        self.save()

    def save(self) -> None:
        body = {"version": REVIEW_VERSION, "params": self.params, "decisions": self.decisions}
        atomic_write_text(self.path, json.dumps(body, indent=1, sort_keys=True) + "\n")


def _diff(old: dict | None, new: dict) -> str:
    if not isinstance(old, dict):
        return "no options recorded"
    from rainset.differences import differences

    return differences(old, new, there="then", now="now", name=lambda k: f"`{k}`")


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReviewFileError(f"{path}: not a readable review file ({exc}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("decisions"), dict):
        raise ReviewFileError(f"{path}: not a rainset review file (no 'decisions' object).")
    for key, d in data["decisions"].items():
        if not isinstance(d, dict) or d.get("action") not in ACTIONS:
            raise ReviewFileError(
                f"{path}: decision {key!r} has no valid action (expected one of {', '.join(ACTIONS)})."
            )
    return data


def accept_reviewer(candidate: Candidate) -> Decision:
    """Batch mode: accept the first candidate of every window."""
    return Decision("accept", by="accept")


def auto_reviewer(threshold: float) -> Callable[[Candidate], Decision]:
    """Accept when the residual-rain score is at most ``threshold``, else ask for more frames.

    At the frame cap a candidate still above the threshold is rejected (its reason says so).
    ``threshold`` must be a finite number (``nan`` would reject everything).
    """
    from rainset._checks import require_finite

    require_finite("threshold", threshold)
    # A partial of a module-level function: picklable, so it reaches worker processes.
    return functools.partial(_auto_review, threshold)


def _auto_review(threshold: float, candidate: Candidate) -> Decision:
    if candidate.score is None:
        raise ValueError("auto review needs candidates with a score")
    said = f"score {candidate.score:.3f} (predicted error {predicted_error(candidate.score):.2f} levels)"
    if candidate.score <= threshold:
        return Decision("accept", f"{said} <= {threshold:g}", by="auto")
    if candidate.can_grow:
        return Decision("more", f"{said} > {threshold:g}", by="auto")
    return Decision(
        "reject",
        f"{said} > {threshold:g} with no frames left to add ({candidate.grow_limit})",
        by="auto",
    )


def file_reviewer(path: str | os.PathLike) -> Callable[[Candidate], Decision]:
    """Replay decisions from a review file written by an earlier run."""
    path = Path(path)
    if not path.is_file():
        raise ReviewFileError(f"{path}: decisions file not found.")
    decisions = _load(path)["decisions"]
    return functools.partial(_file_review, path, decisions)  # picklable, as auto_reviewer's


def _file_review(path: Path, decisions: dict, candidate: Candidate) -> Decision:
    d = decisions.get(candidate.key)
    if d is None:
        raise ReviewFileError(
            f"{path} has no decision for {candidate.key} (scene {candidate.scene}, window "
            f"{candidate.window}, {candidate.n_frames} frames)."
        )
    return Decision(d["action"], d.get("reason", ""), by="file")


# --- no-reference residual-rain score -------------------------------------------------------


def split_half_score(frames: np.ndarray, estimate: Callable[[np.ndarray], np.ndarray]) -> float:
    """Residual-rain score: split-half disagreement, weighted by N where a codec froze the noise.

    Where rain (or a passing object) survives in a clean estimate, it survives differently in
    two estimates made from disjoint halves of the window (odd and even frames); where the
    background was recovered, the two agree up to noise, and agree more as N grows. The
    *disagreement* (:func:`split_half_disagreement`) is the mean over pixels of the largest
    per-channel absolute difference between the two half-estimates, in 8-bit levels; without
    a codec it is the score.

    With a codec (H.264 and the like) most of the estimate's error is noise the codec keeps
    from frame to frame (static blocks are copied until rain makes the encoder code them
    again): both halves share it, so the split cannot see it, yet it still shrinks as the
    window grows; the true error then falls with N much faster than the disagreement does.
    So the disagreement is taken in two parts (:func:`split_half_parts`): *rain*, the pixels
    whose halves differ by :data:`RAIN_LEVELS` or more, and the *rest*; with ``f = min(1,
    CODEC_N_REF / N)`` and ``g`` in [0, 1] (:func:`codec_weight` of :func:`frozen_share`: 0 for
    sensor noise as a camera delivers it, 1 for footage through a codec) the score is
    ``rain * f ** (RAIN_N_POWER * g) + rest * f ** (REST_N_POWER * g)`` (:func:`combine_score`).
    Windows of at most ``CODEC_N_REF`` frames keep the disagreement as it is. On the benchmark
    grid this ranks candidates by their true error with Spearman >= 0.83 within each photo
    (every codec; ``spa``, ``anchored`` and ``robust``), and over the grid >= 0.81 except
    ``spa`` and ``anchored`` at crf 28 (0.77 and 0.78; ``benchmarks/quality_gt.py``,
    docs/groundtruth.md). :func:`predicted_error` turns it into levels of error.

    Parameters
    ----------
    frames : (T, H, W, 3) uint8 ndarray, T >= 4
    estimate : function from a frame stack to an (H, W, 3) uint8 clean image

    Returns
    -------
    score : float
        >= 0; 0 for identical halves.
    """
    rain, rest = split_half_parts(frames, estimate)
    return combine_score(rain, rest, frozen_share(frames), frames.shape[0])


#: Split differences of at least this many levels count as rain (the rain-mask threshold).
RAIN_LEVELS = MASK_THRESHOLD


def split_half_parts(frames: np.ndarray, estimate: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float]:
    """The split-half disagreement in two parts: ``(rain, rest)``, each a mean over all pixels.

    ``d`` is a pixel's largest per-channel |difference| between the estimates from the even and
    the odd frames; *rain* is the mean of ``d`` where ``d >= RAIN_LEVELS`` (0 elsewhere), *rest*
    the mean of the other pixels' ``d``; ``rain + rest`` is :func:`split_half_disagreement`.
    """
    if frames.ndim != 4 or frames.shape[0] < 4:
        raise ValueError(f"frames must be (T>=4, H, W, 3), got {frames.shape}")
    a = estimate(frames[0::2]).astype(np.int16)
    b = estimate(frames[1::2]).astype(np.int16)
    d = np.abs(a - b).max(axis=2)
    big = d >= RAIN_LEVELS
    return float(np.where(big, d, 0).mean()), float(np.where(big, 0, d).mean())


def split_half_disagreement(frames: np.ndarray, estimate: Callable[[np.ndarray], np.ndarray]) -> float:
    """Mean over pixels of the largest per-channel |difference| of the even- and odd-frame estimates.

    The score of earlier versions (and :func:`split_half_score` without a codec), in levels.
    """
    return sum(split_half_parts(frames, estimate))


#: Consecutive samples of a pixel that differ by at most this many levels in every channel are
#: *quiet* (background in both frames: rain raises a pixel by 13+ levels).
FROZEN_QUIET = 6
#: :func:`frozen_share` looks at about this many pixels (a regular grid; all of a smaller image).
FROZEN_PIXELS = 16384
#: :func:`codec_weight` ramps from 0 to 1 as the frozen share goes from the first to the second:
#: sensor noise of sigma 2 repeats a whole pixel exactly in 0.2-0.3 % of quiet pairs, libx264
#: at crf 18 and 28 in 4-73 % (less the denser the rain; benchmark grid).
FROZEN_RAMP = (0.01, 0.03)
#: With a codec the rain part of the disagreement is weighted by ``min(1, CODEC_N_REF / N) **
#: RAIN_N_POWER``, the rest by the same to the REST_N_POWER: fitted on the benchmark grid
#: (within-photo Spearman >= 0.83 for rest exponents 1.0-1.25 and rain exponents 0.3-1.0; 1.1
#: and 0.6 rank the 36 candidates of one codec best and keep robust's failures in torrential
#: rain out of ``--review auto``; docs/groundtruth.md). Up to CODEC_N_REF frames (build-gt's
#: ``sparse`` start) the score is the disagreement itself, as before.
REST_N_POWER = 1.1
RAIN_N_POWER = 0.6
CODEC_N_REF = 20


def frozen_share(frames: np.ndarray) -> float:
    """The share of quiet consecutive pixel pairs that repeat exactly, in all three channels.

    A pair (pixel, frames t-1 and t) is *quiet* when every channel changes by at most
    :data:`FROZEN_QUIET` levels; pairs where a channel sits at 0 or 255 in either frame
    (clipped: they repeat whatever the noise) are left out. Independent sensor noise rarely
    repeats a whole pixel (sigma 2: 0.3 %); a codec that copies static blocks from the previous
    frame repeats most of them (so does a clip without any noise). Computed on a regular grid
    of about :data:`FROZEN_PIXELS` pixels (every ``s``-th row and column); 0 when no pair is
    quiet.
    """
    if frames.ndim != 4 or frames.shape[0] < 2:
        raise ValueError(f"frames must be (T>=2, H, W, C), got {frames.shape}")
    h, w = frames.shape[1:3]
    s = max(1, math.ceil(math.sqrt(h * w / FROZEN_PIXELS)))
    x = frames[:, ::s, ::s]
    same = quiet = 0
    for t0 in range(0, x.shape[0] - 1, 64):  # 64 pairs at a time: a few MB of temporaries
        c = x[t0 : t0 + 65].astype(np.int16)
        ends = ((c == 0) | (c == 255)).any(axis=-1)
        clip = ends[1:] | ends[:-1]
        d = np.abs(c[1:] - c[:-1]).max(axis=-1)
        quiet += int(((d <= FROZEN_QUIET) & ~clip).sum())
        same += int(((d == 0) & ~clip).sum())
    return same / quiet if quiet else 0.0


def codec_weight(share: float) -> float:
    """0 (no codec) to 1 (a codec froze the noise), linear in the frozen share over :data:`FROZEN_RAMP`."""
    lo, hi = FROZEN_RAMP
    return min(1.0, max(0.0, (float(share) - lo) / (hi - lo)))


def combine_score(rain: float, rest: float, share: float, n_frames: int) -> float:
    """The score from its parts: ``rain * f ** (RAIN_N_POWER * g) + rest * f ** (REST_N_POWER * g)``,
    ``f = min(1, CODEC_N_REF / N)``, ``g = codec_weight(share)``."""
    g = codec_weight(share)
    f = min(1.0, CODEC_N_REF / int(n_frames))
    return float(rain) * f ** (RAIN_N_POWER * g) + float(rest) * f ** (REST_N_POWER * g)


#: ``predicted_error(score) = ERROR_SCALE * score ** ERROR_POWER``: a least-squares fit in log-log of
#: the true mean absolute error (levels) against the score over the uncompressed composites of
#: ``benchmarks/quality_gt.py`` (3 photos x 4 densities x N = 20, 50, 100, methods spa, robust
#: and anchored, 480 px: 108 candidates; true / predicted 0.79-1.30 for 80 % of them;
#: docs/groundtruth.md). With a codec the error also holds the codec's own loss (1.2-1.4 levels
#: at crf 18, 2.3-2.7 at crf 28 for a second clean clip), which nothing in the window shows, and
#: the prediction reads low even for the error beyond that loss (beyond / predicted: median 5.5
#: at crf 18, 6.4 at crf 28): there it ranks candidates, and the threshold's meaning is what it
#: accepts on the grid (docs/groundtruth.md, "Calibration").
ERROR_SCALE = 0.310
ERROR_POWER = 1.130
#: ``--review auto`` target: accept when the predicted error is at most about this many levels
#: (the default threshold 1.0 predicts 0.31; the exact score for 0.3 is 0.97, and 1.0 is kept so
#: that earlier review files replay unchanged). With libx264 the candidates it accepts on the grid
#: exceed the codec's own loss by at most 0.95 levels at crf 18 and 1.6 at crf 28.
AUTO_TARGET_ERROR = 0.3


def predicted_error(score: float) -> float:
    """The mean absolute error (8-bit levels) a residual-rain score predicts for its clean image.

    Calibrated on the uncompressed candidates of the benchmark grid (:data:`ERROR_SCALE`,
    :data:`ERROR_POWER`); with a codec it reads low, even against the error beyond the codec's
    own loss (see :data:`ERROR_SCALE`). Monotone, so a threshold on the score is a threshold on
    the predicted error.
    """
    return ERROR_SCALE * max(float(score), 0.0) ** ERROR_POWER


def score_for_error(error: float) -> float:
    """The score whose predicted error is ``error`` levels (the inverse of :func:`predicted_error`)."""
    return (max(float(error), 0.0) / ERROR_SCALE) ** (1.0 / ERROR_POWER)


# --- preview sheet --------------------------------------------------------------------------


def preview_sheet(
    rainy: np.ndarray,
    clean: np.ndarray,
    *,
    title: str = "",
    gain: float = 4.0,
    panel_width: int = 640,
) -> np.ndarray:
    """A review sheet: rainy | clean | amplified difference on top, zoomed crops below.

    The zoomed crops (2x, nearest neighbour) show the quarter-size region where the rainy frame
    and the clean image differ most, so surviving streaks are easy to see.

    Parameters
    ----------
    rainy, clean : (H, W, 3) uint8 ndarray
    gain : amplification of |rainy - clean| in the difference panel.

    Returns
    -------
    sheet : (H', W', 3) uint8 ndarray
    """
    if rainy.shape != clean.shape:
        raise ValueError(f"rainy and clean must have one shape, got {rainy.shape} and {clean.shape}")
    diff = np.abs(rainy.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
    amp = np.clip(diff.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    amp = np.repeat(amp[:, :, None], 3, axis=2)
    panels = [(rainy, "rainy"), (clean, "clean"), (amp, f"|diff| x{gain:g}")]
    top = [sheets.label(sheets.fit_width(img, panel_width), text, box=sheets.BLACK, antialias=False)
           for img, text in panels]
    # Quarter-size crop around the largest local difference.
    y0, x0, ch, cw = sheets.busiest_box(diff)
    zoom = sheets.zoom_for(sum(t.shape[1] for t in top) / 2, cw)
    crops = [
        sheets.label(sheets.magnify(img[y0 : y0 + ch, x0 : x0 + cw], zoom), f"{name} zoom x{zoom}",
                     box=sheets.BLACK, antialias=False)
        for img, name in ((rainy, "rainy"), (clean, "clean"))
    ]
    return sheets.grid([top, crops], title=title)
