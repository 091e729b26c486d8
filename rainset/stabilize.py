"""Stabilisation: register every frame of a window or segment to its reference, then crop.

Most rain footage people can get (phone clips, dash cams parked at the kerb) shakes by a pixel
or a few. Registering each frame to the reference of its window (build-gt) or segment (pairs)
before the temporal estimate turns it into usable data: the clean image is estimated from, and
the rainy frames written are, the registered frames, so each is pixel-aligned with its clean
image.

How (:func:`stabilize`):

1. Per frame, single frames (shake differs from one frame to the next, so no temporal median):
   the tile estimator of :mod:`rainset.registration` at half the policy's analysis factor,
   first against the first frame, then against the temporal median of the frames registered
   with those estimates (a rain-free reference in the first frame's geometry):
   :func:`rainset.registration.register_frames`. ``translation`` keeps the shift of each fit,
   ``similarity`` adds rotation and scale.
2. Every frame is warped (bicubic, sub-pixel) into the reference's geometry and all are cropped
   to the axis-aligned box that every registered frame covers, less a 2 px margin (the bicubic
   support).
3. What registration cannot fix is refused, with the measured figures, by the policy's
   thresholds (:class:`rainset.motion.MotionPolicy`):

   - a picture the static check's own measurement finds changing beyond measuring (see
     :mod:`rainset.motion`: moving foreground filling the frame);

   - ``max_correction``: the largest displacement undone (a pan, a slipped mount);
   - ``max_residual``: the RMS displacement the tile estimator still finds on each registered
     frame against their temporal median: parallax, rolling shutter, a zoom or a turn under
     ``translation``, a picture that changes beyond measuring (moving foreground filling the
     frame: ``inf``). Registered frames that pass the static limit itself (every residual
     within ``max_shift``) are not refused for it: on dark or foggy footage the measurement's
     own noise reaches 0.3-0.7 px;
   - ``min_crop``: the share of the frame the common crop keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from rainset.motion import STABILIZE_MODES, MotionPolicy
from rainset.registration import (
    MotionSummary,
    Registrar,
    analysis_luma,
    measure_motion,
    model_matrix,
    register_frames,
)

#: Pixels the common crop keeps clear of every registered frame's border: the bicubic kernel
#: reads two pixels either side.
CROP_MARGIN = 2


@dataclass(frozen=True)
class Stabilization:
    """The registration of a run of frames, and whether it is usable.

    Attributes
    ----------
    mode : ``"translation"`` or ``"similarity"``.
    matrices : (T, 2, 3) float ndarray: for each frame, the matrix taking reference pixel
        coordinates to where the frame shows that point (the registered frame is the frame
        sampled at these positions).
    correction : largest displacement undone, px.
    residual : RMS displacement left on the registered frames, px; ``residual_max`` the largest.
    crop : ``(x, y, w, h)`` of the common area, in reference pixels.
    crop_share : ``w * h`` over the frame area.
    refused : ``""`` when usable, else one sentence with the measured figure and the limit.
    """

    mode: str
    matrices: np.ndarray
    correction: float
    residual: float
    residual_max: float
    crop: tuple[int, int, int, int]
    crop_share: float
    refused: str

    @property
    def ok(self) -> bool:
        return not self.refused

    def record(self) -> dict:
        """The manifest's record: mode, per-frame transforms, residual and crop."""
        return {
            "mode": self.mode,
            "transforms": [[round(float(v), 5) for v in m.reshape(-1)] for m in self.matrices],
            "correction_px": round(self.correction, 3),
            "residual_px": round(self.residual, 3),
            "residual_max_px": round(self.residual_max, 3),
            "crop": list(self.crop),
            "crop_share": round(self.crop_share, 4),
        }


def warp(frame: np.ndarray, matrix: np.ndarray, crop: tuple[int, int, int, int]) -> np.ndarray:
    """The registered, cropped frame: ``frame`` sampled bicubically at ``matrix`` times each
    reference pixel of ``crop``."""
    x, y, w, h = crop
    m = matrix.astype(np.float64)  # a new array: astype copies
    m[:, 2] += m[:, :2] @ np.array([x, y], float)  # output pixel (0, 0) is reference (x, y)
    return cv2.warpAffine(
        frame, m, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
    )


def common_crop(matrices: np.ndarray, shape: tuple[int, int], margin: int = CROP_MARGIN) -> tuple[int, int, int, int]:
    """Axis-aligned box of reference pixels that every frame covers (``matrices`` as in
    :class:`Stabilization`), ``margin`` px inside each frame's border; may be empty (w or h 0)."""
    h, w = shape
    x0, y0, x1, y1 = 0.0, 0.0, w - 1.0, h - 1.0
    lo = np.array([margin, margin], float)
    hi = np.array([w - 1 - margin, h - 1 - margin], float)
    for m in matrices:
        a, t = m[:, :2], m[:, 2]
        inv = np.linalg.inv(a)
        # Reference points that land on the frame's margin box: map its corners back.
        box = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [lo[0], hi[1]], [hi[0], hi[1]]])
        back = (box - t) @ inv.T
        x0 = max(x0, back[0, 0], back[2, 0])
        x1 = min(x1, back[1, 0], back[3, 0])
        y0 = max(y0, back[0, 1], back[1, 1])
        y1 = min(y1, back[2, 1], back[3, 1])
    cx0, cy0 = math.ceil(x0), math.ceil(y0)
    cx1, cy1 = math.floor(x1), math.floor(y1)
    return cx0, cy0, max(0, cx1 - cx0 + 1), max(0, cy1 - cy0 + 1)


def stabilize(
    frames: np.ndarray,
    mode: str = "translation",
    policy: MotionPolicy | None = None,
    *,
    summary: MotionSummary | None = None,
) -> tuple[Stabilization, np.ndarray | None]:
    """Register ``frames`` ((T, H, W, 3) uint8 RGB) to the first and judge the result.

    ``summary``: the static check's :func:`rainset.registration.measure_motion` of these
    frames under ``policy``, when the caller has it already (build-gt); measured here otherwise.

    Returns
    -------
    stab : Stabilization; ``refused`` says why it cannot be used (the caller refuses the
        window or segment with it).
    registered : (T, h, w, 3) uint8, the registered frames cropped to ``stab.crop``; ``None``
        when refused before they were made (correction or crop).
    """
    if mode not in STABILIZE_MODES:
        raise ValueError(f"mode must be one of {STABILIZE_MODES}, got {mode!r}")
    policy = policy or MotionPolicy()
    h, w = frames[0].shape[:2]
    plain = summary if summary is not None else measure_motion(frames, policy)
    if math.isinf(plain.max_shift):
        refused = (
            f"the picture changes beyond measuring at frame {plain.worst} (moving foreground "
            "filling the frame, or motion faster than the tiles follow)"
        )
        eye = np.repeat(np.eye(2, 3)[None], len(frames), axis=0)
        return Stabilization(mode, eye, math.inf, math.inf, math.inf, (0, 0, w, h), 1.0, refused), None
    fine = _fine(policy, h, w)
    motions = register_frames(frames, fine, mode=mode)
    matrices = np.stack([model_matrix(m, (h, w)) for m in motions])
    correction = max(m.displacement for m in motions)
    crop = common_crop(matrices, (h, w))
    share = crop[2] * crop[3] / (h * w)
    refused = ""
    if correction > policy.max_correction:
        refused = (
            f"the camera moves {correction:.1f} px from the reference, more than stabilisation "
            f"undoes ({policy.max_correction:g} px): a pan or a slipped mount, not shake"
        )
        return Stabilization(mode, matrices, correction, math.inf, math.inf, crop, share, refused), None
    if share < policy.min_crop:
        refused = (
            f"the area every registered frame covers is {100 * share:.0f} % of the frame "
            f"(at least {100 * policy.min_crop:.0f} % needed)"
        )
        return Stabilization(mode, matrices, correction, math.inf, math.inf, crop, share, refused), None
    registered = np.empty((len(frames), crop[3], crop[2], 3), np.uint8)
    for i, (f, m) in enumerate(zip(frames, matrices)):
        registered[i] = warp(f, m, crop)
    residual, worst = _residual(registered, policy)
    if residual > policy.max_residual and worst > policy.max_shift:
        what = "a zoom or rotation" if mode == "translation" else "parallax or rolling shutter"
        refused = (
            f"after {mode} registration the frames still move by {residual:.2f} px RMS (limit "
            f"{policy.max_residual:g} px) and up to {worst:.2f} px (a static camera's limit: "
            f"{policy.max_shift:g} px): {what} that {mode} does not model"
        )
    return Stabilization(mode, matrices, correction, residual, worst, crop, share, refused), registered


def _fine(policy: MotionPolicy, h: int, w: int) -> MotionPolicy:
    """The policy with half its analysis factor: registration wants the sub-pixel accuracy.
    Texture per analysis pixel halves with the factor, and so does ``min_texture``."""
    from dataclasses import replace

    k = policy.factor(h, w)
    if k == 1:
        return policy
    return replace(policy, size=max(32, math.ceil(max(h, w) / (k // 2))), min_texture=policy.min_texture / 2)


def _residual(registered: np.ndarray, policy: MotionPolicy) -> tuple[float, float]:
    """RMS and largest displacement of the registered frames, each measured on its own (the
    tile estimator and similarity fit at the registration's analysis factor) against their
    temporal median: what registration left, frame by frame (a three-frame median would
    average per-frame jitter away)."""
    fine = _fine(policy, *registered.shape[1:3])
    k = fine.factor(*registered.shape[1:3])
    small = [analysis_luma(f, k) for f in registered]
    reg = Registrar(fine, k, small[0].shape)
    reg.set_reference(np.median(np.stack(small), axis=0).astype(np.uint8))
    d = [m.displacement for m in (reg.measure(x, i) for i, x in enumerate(small)) if m.measured]
    if not d:
        return 0.0, 0.0
    return float(np.sqrt(np.mean(np.square(d)))), float(max(d))


__all__ = ["Stabilization", "stabilize", "warp", "common_crop", "CROP_MARGIN"]
