"""Camera motion and light change: the one static-camera policy of rainset.

Both real-footage pipelines ask the same question, "is the camera still?": build-gt before it
averages a window (SPANet paper, Sec. 3, assumes a static camera and constant light) and pairs
before it keeps a static segment (time-lapse seed, Sec. III-D). They ask it here, with one
estimator (:mod:`rainset.registration`) and one :class:`MotionPolicy`.

The measurement, per frame, on downscaled luma after a temporal median of three frames (a rain
streak rarely covers one pixel in consecutive frames): sub-pixel phase correlation, with a
spectral peak weighting that keeps rain and sensor noise from dominating, on each tile of a
3 x 3 grid against the same tiles of the reference frame (the first frame of the build-gt
window or of the pairs run); a similarity model (translation, rotation, scale) is fitted to the
tile shifts that agree (a passing car or a swaying branch in a tile is outvoted).

The limit has one meaning: the **displacement** of a frame is the largest movement, in
full-resolution pixels, that the fitted model gives any tile centre against the reference
(for a pure translation, the length of the shift). A frame moves when its displacement exceeds
``max_shift``. A frame whose tiles do not agree (fewer than ``min_tiles`` tiles with a
correlation peak of at least ``min_response`` and one motion) is judged by its reference: when
the reference has fewer than ``min_tiles`` textured tiles (a featureless wall, night sky, fog,
rain dominating), or two tiles still match in place (a still camera, foreground over the
rest), the frame is *unmeasured*: reported, with its confidence, and not counted as motion;
otherwise the picture has changed beyond measuring (a pan faster than the tiles follow, moving
foreground filling the frame) and the frame moves (displacement ``inf``).

This module holds the policy and nothing heavy (the command line reads the defaults from it
without importing OpenCV); the estimator's names are re-exported from
:mod:`rainset.registration` on first use.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Literal

from rainset.errors import ParameterError

#: Stabilisation modes: the motion model registration removes before the temporal estimate.
STABILIZE_MODES = ("translation", "similarity")


@dataclass(frozen=True)
class MotionPolicy:
    """What counts as a static camera and a constant light (one set of defaults for every
    pipeline; ``rainset build-gt`` and ``rainset pairs`` show them in ``--help``).

    Parameters
    ----------
    max_shift : largest displacement (full-resolution pixels) of any frame against the
        reference frame of its window or segment, with the meaning given in the module
        docstring. 1 px: a 1 px spread over the frames of a window blurs the clean image by
        about that much; tripods in wind stay below it, hand-held shots do not.
    max_drift : largest relative change of the mean luma against the reference frame
        (the denominator floored at 16 levels, so noise in near-black night footage is no
        "change"). Pairs ends a segment at it; build-gt flags the window.
    min_response : smallest phase-correlation peak (1 = identical tiles, ~0 = unrelated) for a
        tile's shift to count. Generated textured tiles give 0.38-0.95 (1st percentile under
        dense rain: 0.38), the realrain13 clips a median of 0.37-0.90 per clip (0.16 for
        892.mp4); a near-featureless wall under dense rain 0.12-0.37 (median 0.17), and there
        the "shift" is where the rain happened to correlate.
    min_tiles : fewest tiles (of 9) that must pass ``min_response`` and agree on one
        similarity (within 0.5 analysis px) for a frame to be measured at all. With 3, chance
        agreement of rain-locked tiles on a featureless wall gave a confident 13 px "shift"
        once in 40 frames; with 4, none in the tests.
    min_texture : texture (median ``|d/dx| + |d/dy|``, levels per analysis pixel, of a
        reference tile after the three-frame median) from which a tile counts as textured. A
        frame that cannot be measured counts as motion (the picture changed: a pan faster than
        the tiles follow, moving foreground filling the frame) when at least ``min_tiles``
        tiles of its reference are textured and fewer than two tiles still match in place;
        otherwise it is unmeasured. Generated featureless wall under
        dense rain: 2; realrain13 tiles 0-40 (night sky and fog 0-2).
    size : target longest side of the analysis image; the downscale factor is also capped so
        that ``max_shift`` stays at least a third of an analysis pixel (see :meth:`factor`).
    max_correction : stabilisation only: the largest displacement registration will undo, px.
        Shake of a hand-held phone or a camera on a kerb stays within a few pixels of where it
        started; beyond this the camera is panning (or the mount slipped), and the window or
        segment is refused.
    max_residual : stabilisation only: the largest RMS displacement left after registration,
        px (re-measured on the registered frames). Above it, and with some frame still beyond
        ``max_shift``, the chosen model does not explain the motion: parallax, rolling
        shutter, a zoom under ``translation``.
    min_crop : stabilisation only: the smallest share of the frame area that every
        registered frame covers (the common crop that is written).
    """

    max_shift: float = 1.0
    max_drift: float = 0.10
    min_response: float = 0.25
    min_tiles: int = 4
    min_texture: float = 4.0
    size: int = 320
    max_correction: float = 10.0
    max_residual: float = 0.3
    min_crop: float = 0.8

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ParameterError(f.name, f"must be a finite number, got {v}")
        if not self.max_shift >= 0:
            raise ParameterError("max_shift", f"must be >= 0 px, got {self.max_shift}")
        for name in ("max_drift", "max_correction", "max_residual"):
            if not getattr(self, name) > 0:
                raise ParameterError(name, f"must be > 0, got {getattr(self, name)}")
        if not 0 <= self.min_response < 1:
            raise ParameterError("min_response", f"must be in [0, 1), got {self.min_response}")
        if not self.min_texture >= 0:
            raise ParameterError("min_texture", f"must be >= 0, got {self.min_texture}")
        if not 2 <= self.min_tiles <= 9:
            raise ParameterError("min_tiles", f"must be in 2..9, got {self.min_tiles}")
        if not 0 < self.min_crop <= 1:
            raise ParameterError("min_crop", f"must be in (0, 1], got {self.min_crop}")
        if self.size < 32:
            raise ParameterError("size", f"must be >= 32, got {self.size}")

    def factor(self, height: int, width: int) -> int:
        """Downscale factor of the analysis image for ``height x width`` frames: a power of
        two (each halving is a fast 2 x 2 area average).

        The largest power of two not above ``ceil(longest side / size)``, nor above
        ``4 * max_shift`` (the shift estimate's noise on rainy static footage is 0.02-0.06
        analysis px, so the limit stays several times above it), nor so large that the shorter
        side keeps fewer than 24 pixels per tile row: 720 x 480 is analysed at 360 x 240, 1080p
        at 480 x 270, 4K at 960 x 540 with the defaults.
        """
        by_size = math.ceil(max(height, width) / self.size)
        by_shift = max(1, math.floor(4 * self.max_shift))
        k = max(1, min(by_size, by_shift, min(height, width) // 24))
        return 1 << (k.bit_length() - 1)

    def params(self) -> dict:
        return asdict(self)


#: The defaults, for messages and documentation.
DEFAULT_POLICY = MotionPolicy()

#: Kept names: build-gt's and pairs' default limits are the policy's.
MAX_SHIFT_PX = DEFAULT_POLICY.max_shift
MAX_DRIFT = DEFAULT_POLICY.max_drift

Stabilize = Literal["translation", "similarity"]

_LAZY = {
    "FrameMotion", "MotionSummary", "MotionMeter", "Registrar", "AnalysisStream",
    "measure_motion", "summarize", "phase_shifts", "PEAK_SIGMA",
}  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        from rainset import registration

        return getattr(registration, name)
    raise AttributeError(f"module 'rainset.motion' has no attribute {name!r}")
