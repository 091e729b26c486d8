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

from rainset.image import rgb_to_luma

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
    h, w = frame.shape[:2]
    scale = min(1.0, size / max(h, w))
    y = rgb_to_luma(frame)
    if scale < 1.0:
        y = cv2.resize(y, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return y.astype(np.float32), scale


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
    sub-pixel and insensitive to global brightness changes.
    """
    if group < 1:
        raise ValueError(f"group must be >= 1, got {group}")
    medians: list[np.ndarray] = []
    buf: list[np.ndarray] = []
    scale = 1.0
    for frame in frames:
        small, scale = _small_luma(frame, size)
        buf.append(small)
        if len(buf) == group:
            medians.append(np.median(np.stack(buf), axis=0).astype(np.float32))
            buf = []
    if buf:
        medians.append(np.median(np.stack(buf), axis=0).astype(np.float32))
    if not medians:
        raise ValueError("measure_motion needs at least one frame")
    ref = medians[0]
    window = cv2.createHanningWindow(ref.shape[::-1], cv2.CV_32F)
    shifts = np.zeros((len(medians), 2))
    for i, m in enumerate(medians[1:], start=1):
        # Copies: some OpenCV builds apply the window to the inputs in place.
        (dx, dy), _ = cv2.phaseCorrelate(ref.copy(), m.copy(), window)
        shifts[i] = (dx / scale, dy / scale)
    brightness = np.array([float(np.median(m)) for m in medians])
    top = float(brightness.max())
    drift = float((top - brightness.min()) / top) if top > 0 else 0.0
    return MotionReport(
        shifts=shifts,
        max_shift=float(np.hypot(shifts[:, 0], shifts[:, 1]).max()),
        brightness=brightness,
        drift=drift,
        group=group,
    )
