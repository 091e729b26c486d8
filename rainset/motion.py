"""Camera motion and illumination drift over a run of frames from one camera.

The ground-truth builder assumes a static camera and constant ambient light (SPANet paper,
Sec. 3); the time-lapse pair finder needs the same measurements per frame. Both are measured on
downscaled luma after a temporal median over short groups of frames, so rain streaks (which
rarely cover a pixel in several consecutive frames) do not dominate the estimate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

#: Largest side of the downscaled luma used for phase correlation. At 1080p a 0.1 px
#: sub-pixel error here is ~0.4 px at full resolution: fine against the ~1 px threshold.
MOTION_SIZE = 480

#: Frames per temporal-median group (rain suppression before comparing).
MOTION_GROUP = 5

#: Default largest tolerated camera shift in full-resolution pixels (issue: "above ~1 px").
MAX_SHIFT_PX = 1.0

#: Default largest tolerated illumination drift: relative change of the median luma.
MAX_DRIFT = 0.10


@dataclass(frozen=True)
class MotionReport:
    """Camera shift and light drift measured over a run of frames.

    Attributes
    ----------
    shifts : (G, 2) float ndarray
        (dx, dy) of each frame group against the first, in full-resolution pixels.
    max_shift : float
        Largest shift magnitude in pixels.
    brightness : (G,) float ndarray
        Median full-range luma of each group (0..255).
    drift : float
        (max - min) / max of ``brightness``: 0.1 means the light changed by 10 %.
    group : int
        Frames per group.
    """

    shifts: np.ndarray
    max_shift: float
    brightness: np.ndarray
    drift: float
    group: int

    def is_static(self, max_shift: float = MAX_SHIFT_PX) -> bool:
        return self.max_shift <= max_shift


def _small_luma(frame: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    # BT.601 luma (OpenCV's rounded form: phase correlation does not need the exact floor of
    # rainset.image.rgb_to_luma), then an area downscale: ~1.3 ms a 1080p frame.
    h, w = frame.shape[:2]
    scale = min(1.0, size / max(h, w))
    y = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        y = cv2.resize(y, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return y.astype(np.float32), scale


class MotionMeter:
    """Streaming form of :func:`measure_motion`: feed frames as they decode, ask for a report
    at any time (the build-gt window grows while the reviewer asks for more frames).

    Only the downscaled luma of each frame is kept.
    """

    def __init__(self, *, size: int = MOTION_SIZE, group: int = MOTION_GROUP):
        if group < 1:
            raise ValueError(f"group must be >= 1, got {group}")
        self.size = size
        self.group = group
        self._small: list[np.ndarray] = []
        self._scale = 1.0

    def __len__(self) -> int:
        return len(self._small)

    def update(self, frame: np.ndarray) -> None:
        small, self._scale = _small_luma(frame, self.size)
        self._small.append(small)

    def report(self, n: int | None = None) -> MotionReport:
        """The report over the first ``n`` frames fed (all by default)."""
        small = self._small[:n]
        if not small:
            raise ValueError("measure_motion needs at least one frame")
        g = self.group
        medians = [np.median(np.stack(small[i : i + g]), axis=0).astype(np.float32) for i in range(0, len(small), g)]
        ref = medians[0]
        window = cv2.createHanningWindow(ref.shape[::-1], cv2.CV_32F)
        shifts = np.zeros((len(medians), 2))
        for i, m in enumerate(medians[1:], start=1):
            # Copies: some OpenCV builds apply the window to the inputs in place.
            (dx, dy), _ = cv2.phaseCorrelate(ref.copy(), m.copy(), window)
            shifts[i] = (dx / self._scale, dy / self._scale)
        brightness = np.array([float(np.median(m)) for m in medians])
        top = float(brightness.max())
        drift = float((top - brightness.min()) / top) if top > 0 else 0.0
        return MotionReport(
            shifts=shifts,
            max_shift=float(np.hypot(shifts[:, 0], shifts[:, 1]).max()),
            brightness=brightness,
            drift=drift,
            group=g,
        )


def measure_motion(
    frames: Iterable[np.ndarray], *, size: int = MOTION_SIZE, group: int = MOTION_GROUP
) -> MotionReport:
    """Measure global camera shift and illumination drift over ``frames``.

    Parameters
    ----------
    frames : iterable of (H, W, 3) uint8 ndarray, or a (T, H, W, 3) stack
    size : int
        Largest side of the downscaled luma.
    group : int
        Frames per temporal-median group; the first group is the reference.

    Returns
    -------
    MotionReport

    Notes
    -----
    Shifts come from OpenCV's phase correlation with a Hann window on the group medians; it is
    sub-pixel and insensitive to global brightness changes. Brightness is the median of the
    downscaled full-range BT.601 luma.
    """
    meter = MotionMeter(size=size, group=group)
    for frame in frames:
        meter.update(frame)
    return meter.report()
