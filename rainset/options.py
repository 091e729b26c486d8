"""The options of every pipeline, each default written once.

Every pipeline call (:func:`rainset.build_gt`, :func:`rainset.find_pairs`,
:func:`rainset.synthesize`, :func:`rainset.import_dataset`, :func:`rainset.export_dataset`,
:func:`rainset.train.validate`, :func:`rainset.train.derain_files`) takes its options from the
dataclasses here, and every option of the command line takes its default from them
(``tests/test_cli_defaults.py`` checks it). The options that shape a dataset's content
(:class:`BuildOptions`, :class:`PairsOptions` with :class:`StaticConfig`, :class:`SynthOptions`
with :class:`SynthConfig`) are recorded in its ``rainset.json``; the others say how a run goes
(:class:`OutputOptions`, :class:`ReviewOptions`, :class:`RunOptions`, :class:`SceneOptions`).

This module imports nothing heavy (no OpenCV, PyAV, NumPy or torch), so that ``rainset
--help`` stays fast; the modules that use an option class re-export it
(``rainset.buildgt.BuildOptions`` is this module's).

Longer than ~500 lines on purpose: it is declarations (fields, their checks and docstrings),
and "every default in one place" is the point of it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from rainset._checks import require_finite, require_finite_all
from rainset.errors import ParameterError
from rainset.motion import STABILIZE_MODES, MotionPolicy

# ----------------------------------------------------------------------------- constants

#: Default rain-mask threshold in 8-bit levels (~0.05 of full range): ARCHITECTURE.md sec. 2.
MASK_THRESHOLD = 13

#: build-gt's starting N and growth step per rain density: SPANet paper, Sec. 3 ("{20, 100,
#: 200} ... adding {10, 20, 50} frames").
DENSITY: dict[str, tuple[int, int]] = {"sparse": (20, 10), "normal": (100, 20), "dense": (200, 50)}

#: Default residual-rain score (:func:`rainset.review.split_half_score`: the split-half
#: disagreement in 8-bit levels, weighted by N under a codec) under which the ``auto`` review
#: accepts a build-gt window (a predicted error of 0.31 levels); measured values in docs/groundtruth.md.
AUTO_THRESHOLD = 1.0

#: Frames per time-lapse sequence: the paper's N (Sec. III-E, "We set C = 186 and N = 30").
N_FRAMES = 30

#: Image height (px) at which synth's radius and length are given (rainset.streaks).
REFERENCE_HEIGHT = 512
#: The paper's seven directions (degrees from vertical).
PAPER_ANGLES: tuple[float, ...] = (0.0, 15.0, -15.0, 30.0, -30.0, 40.0, -40.0)
#: The paper's seven directions in the order :func:`rainset.synth.parse_angles` gives them
#: (by size, the negative first): the default of :class:`SynthConfig` (the order is the
#: sampler's, so a dataset made from Python and one made by ``rainset synth`` are the same).
DEFAULT_ANGLES: tuple[float, ...] = tuple(sorted(PAPER_ANGLES, key=lambda a: (abs(a), a)))
#: The paper's Gaussian-blur radii.
PAPER_RADII: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
#: Target coverage range per density class: the expected fraction of pixels the rain mask
#: marks. Our own choice; DID-MDN's light / medium / heavy classes come with no numbers.
DENSITY_COVERAGE: dict[str, tuple[float, float]] = {
    "light": (0.02, 0.06),
    "medium": (0.06, 0.14),
    "heavy": (0.14, 0.28),
}
#: synth's low-pass ground-truth tiers: Gaussian kernel sizes of the paper.
TIER_SIZES: tuple[int, ...] = (3, 5, 7, 9)
#: synth's rain maps are stored as 16-bit PNG: value = rain * 10000 (up to 6.55).
RAIN_MAP_SCALE = 1e-4
#: Share of the fine detail a low-pass tier keeps under which synth's rule (and its ``auto``
#: tier review) takes it (rainset.synth.choose_tier).
TIER_DETAIL_KEPT = 0.3

Blend = Literal["add", "screen"]
Review = Literal["prompt", "accept", "auto", "file", "web"]


def format_angles(angles: tuple[float, ...]) -> str:
    """An angle list as ``parse_angles`` reads it: ``(0, -15, 15, 30)`` -> ``"0,15,+30"``.

    An angle whose mirror is also in the list is written once, unsigned (both sides); one
    without its mirror is written signed.
    """
    out: list[str] = []
    seen: set[float] = set()
    for a in angles:
        a = float(a)
        if a in seen:
            continue
        if a in (0.0, 90.0):
            out.append(f"{a:g}")
        elif -a in angles:
            out.append(f"{abs(a):g}")
            seen.add(-a)
        else:
            out.append(f"{a:+g}")
        seen.add(a)
    return ",".join(out)


def format_numbers(values) -> str:
    """A number list as the command line writes it: ``(0.2, 1.0)`` -> ``"0.2,1.0"``."""
    return ",".join(repr(float(v)) if isinstance(v, float) else str(v) for v in values)


def _scene_ids(scenes) -> tuple[str, ...]:
    """``test_scenes`` as a tuple: an iterable of ids, or the command line's comma list."""
    if isinstance(scenes, str):
        return tuple(s.strip() for s in scenes.split(",") if s.strip())
    return tuple(scenes)


# ----------------------------------------------------------------------------- run settings


@dataclass(frozen=True)
class OutputOptions:
    """How a written dataset stores its images and splits its scenes (every writing pipeline).

    Parameters
    ----------
    image_format : ``"png"`` (lossless) or ``"jpg"`` for the images (masks and maps are PNG).
    jpeg_quality : 1..100, with ``"jpg"``.
    test_scenes : scene ids that form the test split exactly.
    test_fraction : without ``test_scenes``: share of scenes (by a stable hash of the id) in
        the test split.
    """

    image_format: Literal["png", "jpg"] = "png"
    jpeg_quality: int = 95
    test_scenes: tuple[str, ...] = ()
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.image_format not in ("png", "jpg"):
            raise ParameterError("image_format", f"must be 'png' or 'jpg', got {self.image_format!r}")
        if not 1 <= int(self.jpeg_quality) <= 100:
            raise ParameterError("jpeg_quality", f"must be in 1..100, got {self.jpeg_quality}")
        require_finite("test_fraction", self.test_fraction)
        if not 0 <= self.test_fraction <= 1:
            raise ParameterError("test_fraction", f"must be in [0, 1], got {self.test_fraction}")
        object.__setattr__(self, "test_scenes", _scene_ids(self.test_scenes))


@dataclass(frozen=True)
class RunOptions:
    """Where a run's work is done.

    Parameters
    ----------
    executor : ``"local"`` (this machine, ``workers`` processes) or ``"ray"`` (one task per
        input on a Ray cluster, each writing a shard merged into the output as it finishes).
    workers : inputs processed in parallel (local worker processes, or a local Ray's CPUs).
    address : with ``"ray"``: the cluster, ``"auto"`` or ``HOST:PORT`` (None: a local Ray).
    staging : with ``"ray"``: a folder every worker can reach for the shards (None: inside
        the output).
    device : build-gt's estimator: ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """

    executor: Literal["local", "ray"] = "local"
    workers: int = 1
    address: str | None = None
    staging: str | os.PathLike | None = None
    device: Literal["auto", "cpu", "cuda"] = "cpu"

    def __post_init__(self) -> None:
        if self.executor not in ("local", "ray"):
            raise ParameterError("executor", f"must be 'local' or 'ray', got {self.executor!r}")
        if int(self.workers) < 1:
            raise ParameterError("workers", f"must be >= 1, got {self.workers}")
        if self.executor != "ray":
            for name in ("address", "staging"):
                if getattr(self, name) is not None:
                    raise ParameterError(name, "only used with `executor` 'ray'")


@dataclass(frozen=True)
class ReviewOptions:
    """Who decides about each candidate (a build-gt window, a synth tier).

    Parameters
    ----------
    review : ``"accept"`` every candidate, ``"auto"`` by its score (build-gt: residual-rain
        score at or under ``auto_threshold``), ``"file"`` (the answers in ``decisions``), or a
        reviewer: any callable ``reviewer(candidate) -> rainset.review.Decision``. The command
        line adds ``"prompt"`` (a terminal) and ``"web"`` (a browser); from Python they are
        reviewers like any other.
    decisions : the decisions file of ``review="file"`` (a ``review.json``).
    auto_threshold : build-gt's ``"auto"`` review accepts at or under this residual-rain score
        (mean split-half disagreement, levels; 1.0 predicts an error of 0.31 levels).
    """

    review: Any = "accept"
    decisions: str | os.PathLike | None = None
    auto_threshold: float = AUTO_THRESHOLD

    def __post_init__(self) -> None:
        require_finite("auto_threshold", self.auto_threshold)
        if not self.auto_threshold >= 0:
            raise ParameterError("auto_threshold", f"must be >= 0, got {self.auto_threshold}")
        if isinstance(self.review, str):
            if self.review not in ("accept", "auto", "file", "prompt", "web"):
                raise ParameterError(
                    "review", f"must be 'accept', 'auto', 'file' or a reviewer callable, got {self.review!r}"
                )
            if self.review == "file" and self.decisions is None:
                raise ParameterError("decisions", "`review` 'file' needs a decisions file")
        elif not callable(self.review):
            raise ParameterError("review", f"must be a mode or a reviewer callable, got {self.review!r}")

    @property
    def batch(self) -> bool:
        """True for a review that needs nobody at a terminal or browser (accept, auto, file,
        or a picklable reviewer function)."""
        return not (isinstance(self.review, str) and self.review in ("prompt", "web"))


@dataclass(frozen=True)
class SceneOptions:
    """How inputs become scenes (build-gt, pairs, import paired).

    Parameters
    ----------
    root : scene ids are the inputs' paths relative to this folder (cam1/clip, cam2/clip)
        instead of their file or folder names.
    scene : scene id of the single input (instead of its file or folder name).
    allow_duplicate_sources : keep inputs whose contents another input (or a recorded source)
        already has under another scene id (a copy, a link).
    note : licence / provenance note recorded with each source ("" : the pipeline's own).
    """

    root: str | os.PathLike | None = None
    scene: str | None = None
    allow_duplicate_sources: bool = False
    note: str = ""


# ----------------------------------------------------------------------------- build-gt


@dataclass(frozen=True)
class BuildOptions:
    """Everything that decides which images build-gt produces (recorded in ``rainset.json``).

    ``start`` is a frame index, or seconds when ``start_seconds`` is set; ``every`` lays windows
    every so many seconds instead of back to back; ``crop`` is ``(x, y, w, h)`` in pixels.
    ``density`` sets the starting frame count and growth step (:data:`DENSITY`); ``frames``
    starts with that many instead; ``max_frames`` caps a window. ``select`` votes the
    percentile on luma or RGB; ``method`` is the estimator (``"spa"``, ``"robust"``,
    ``"anchored"``: docs/groundtruth.md). ``mask_threshold`` (levels) with ``mask_mode``
    ``"threshold"``, or ``"any"`` (SPANet's code). ``write="clean"`` writes clean images and
    previews only; ``masks=False`` writes the rainy frames without their rain masks (SPANet's
    trainer uses them; without, rainset's trainer computes them from the pair). ``allow_motion`` estimates even when the camera moves; ``max_shift``,
    ``max_drift`` are the static-camera policy (:class:`rainset.motion.MotionPolicy`);
    ``stabilize`` registers every frame of a window to its first. ``score`` computes the
    residual-rain score (the ``auto`` review sets it).
    """

    density: Literal["sparse", "normal", "dense"] = "normal"
    frames: int | None = None
    max_frames: int = 300
    start: float = 0
    start_seconds: bool = False
    windows: int = 1
    every: float | None = None
    crop: tuple[int, int, int, int] | None = None
    select: Literal["luma", "rgb"] = "luma"
    method: Literal["spa", "robust", "anchored"] = "spa"
    mask_threshold: int = MASK_THRESHOLD
    mask_mode: Literal["threshold", "any"] = "threshold"
    write: Literal["all", "clean"] = "all"
    masks: bool = True
    allow_motion: bool = False
    max_shift: float = MotionPolicy.max_shift
    max_drift: float = MotionPolicy.max_drift
    score: bool = False
    stabilize: Literal["translation", "similarity"] | None = None

    def __post_init__(self):
        for name in ("start", "every", "max_shift", "max_drift"):
            require_finite(name, getattr(self, name))
        if self.every is not None and not self.every > 0:
            raise ParameterError("every", f"must be > 0 seconds, got {self.every}")
        if not self.max_shift >= 0:
            raise ParameterError("max_shift", f"must be >= 0 px, got {self.max_shift}")
        if self.density not in DENSITY:
            raise ParameterError("density", f"must be one of {sorted(DENSITY)}, got {self.density!r}")
        if self.stabilize not in (None, *STABILIZE_MODES):
            raise ParameterError("stabilize", f"must be one of {', '.join(STABILIZE_MODES)}, got {self.stabilize!r}")
        if self.frames is not None and self.frames < 2:
            raise ParameterError("frames", f"must be >= 2, got {self.frames}")
        if self.max_frames < 2:
            raise ParameterError("max_frames", f"must be >= 2, got {self.max_frames}")
        if self.windows < 1:
            raise ParameterError("windows", f"must be >= 1, got {self.windows}")
        if self.start < 0:
            raise ParameterError("start", f"must be >= 0, got {self.start}")
        if self.crop is not None:
            object.__setattr__(self, "crop", tuple(int(v) for v in self.crop))

    @property
    def policy(self) -> MotionPolicy:
        """The static-camera policy (rainset.motion; pairs' with the same values)."""
        return MotionPolicy(max_shift=self.max_shift, max_drift=self.max_drift)

    @property
    def first_n(self) -> int:
        n = self.frames if self.frames is not None else DENSITY[self.density][0]
        return min(n, self.max_frames)

    @property
    def step(self) -> int:
        return DENSITY[self.density][1]

    def params(self) -> dict:
        """The options as JSON (recorded in rainset.json and review.json)."""
        d = asdict(self)
        d["crop"] = list(self.crop) if self.crop else None
        return d


# ----------------------------------------------------------------------------- pairs


@dataclass(frozen=True)
class StaticConfig:
    """Thresholds and analysis settings of the static-segment finder (rainset.timelapse).

    Parameters
    ----------
    max_shift : largest displacement, in full-resolution pixels, of a frame against the
        segment's first frame: :attr:`rainset.motion.MotionPolicy.max_shift` (one limit, one
        meaning, for build-gt and pairs).
    max_cut : largest ``1 - NCC`` between consecutive coarse frames within a shot. Frames of
        one rainy shot score below 0.07 on real footage (pans and violent wind included);
        different shots 0.5 to 1.
    max_illumination : largest relative change of the mean luma against the run's first frame
        (:attr:`rainset.motion.MotionPolicy.max_drift`).
    max_foreground : largest fraction of moving-foreground pixels a kept frame may have. Above
        30 % too little of the frame is shared background for the consistency loss.
    foreground_level : difference, in 8-bit luma levels (half the analysis resolution), that
        makes a pixel foreground. Rain is mostly removed by the temporal median before this test.
    size : target longest side of the analysis image
        (:meth:`rainset.motion.MotionPolicy.factor`).
    chunk : most frames per foreground chunk (memory: ``chunk`` analysis images).
    stabilize : ``None``, or the model (``"translation"``, ``"similarity"``) the kept segments
        are registered with (:mod:`rainset.stabilize`): a run then ends only where the camera
        moves beyond :attr:`~rainset.motion.MotionPolicy.max_correction` (shake is undone),
        and the foreground test compares frames after undoing their measured motion.
    """

    max_shift: float = MotionPolicy.max_shift
    max_cut: float = 0.3
    max_illumination: float = MotionPolicy.max_drift
    max_foreground: float = 0.3
    foreground_level: int = 20
    size: int = MotionPolicy.size
    chunk: int = 100
    stabilize: Literal["translation", "similarity"] | None = None

    def __post_init__(self) -> None:
        for name in ("max_shift", "max_cut", "max_illumination", "max_foreground"):
            require_finite(name, getattr(self, name))
            if not getattr(self, name) > 0:
                raise ParameterError(name, f"must be > 0, got {getattr(self, name)}")
        if not 1 <= self.foreground_level <= 255:
            raise ParameterError("foreground_level", f"must be in 1..255, got {self.foreground_level}")
        if self.size < 32:
            raise ParameterError("size", f"must be >= 32, got {self.size}")
        if self.chunk < 3:
            raise ParameterError("chunk", f"must be >= 3, got {self.chunk}")
        if self.stabilize not in (None, *STABILIZE_MODES):
            raise ParameterError("stabilize", f"must be one of {', '.join(STABILIZE_MODES)}, got {self.stabilize!r}")

    @property
    def policy(self) -> MotionPolicy:
        """The static-camera policy these settings make (build-gt's, with the same values)."""
        return MotionPolicy(max_shift=self.max_shift, max_drift=self.max_illumination, size=self.size)

    def factor(self, height: int, width: int) -> int:
        """Downscale factor for ``height x width`` frames (the policy's)."""
        return self.policy.factor(height, width)


@dataclass(frozen=True)
class PairsOptions:
    """What the pairs pipeline makes of each scene (recorded in ``rainset.json``).

    Parameters
    ----------
    n_frames : frames kept per segment (the paper's N = 30); also the shortest segment kept.
    pairs_per_segment : pairs drawn per segment; None for all C(N, 2) (435 at N = 30).
    seed : seeds the pair draw; each segment's draw is seeded by ``(seed, crc32(segment id))``
        so adding scenes changes no other segment's pairs.
    select : ``"even"`` or ``"consistent"`` frame choice (:func:`rainset.timelapse.choose_frames`).
    masks : write a foreground mask per frame.
    pseudo_gt : write each segment's clean image estimated from its N frames
        (:func:`rainset.groundtruth.estimate_clean`, SPANet's percentile method).
    static : thresholds of the static-segment finder.
    """

    n_frames: int = N_FRAMES
    pairs_per_segment: int | None = None
    seed: int = 0
    select: Literal["even", "consistent"] = "even"
    masks: bool = True
    pseudo_gt: bool = False
    static: StaticConfig = field(default_factory=StaticConfig)

    def __post_init__(self) -> None:
        if self.n_frames < 2:
            raise ParameterError("n_frames", f"must be >= 2, got {self.n_frames}")
        if self.pairs_per_segment is not None and self.pairs_per_segment < 1:
            raise ParameterError("pairs_per_segment", f"must be >= 1, got {self.pairs_per_segment}")
        if self.select not in ("even", "consistent"):
            raise ParameterError("select", f"must be 'even' or 'consistent', got {self.select!r}")
        if int(self.seed) < 0:  # numpy seeds are >= 0; refused here, not after frames are written
            raise ParameterError("seed", f"must be >= 0, got {self.seed}")

    def params(self) -> dict:
        """The options as the dataset's ``params`` (JSON)."""
        d = asdict(self)
        d["pairs"] = "all" if self.pairs_per_segment is None else self.pairs_per_segment
        return d


# ----------------------------------------------------------------------------- synth


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`rainset.streaks.sample_params` draws from (each choice uniform).

    Parameters
    ----------
    angles : signed directions in degrees from vertical (positive: top leans right).
    radii : the paper's blur radii; sigma = radius * H / reference_height px.
    densities : density classes, keys of :data:`DENSITY_COVERAGE`.
    length : (min, max) streak length in px at the reference height (near layer).
    brightness : (min, max) peak brightness of the near layer's brightest streak, in [0, 1].
    jitter : each streak's peak is ``brightness * (1 - jitter * u)``, u ~ U[0, 1).
    layers : 1 (near only) or 2 (near and far).
    blend : ``"add"`` (O = B + R, clipped) or ``"screen"`` (O = 1 - (1 - B)(1 - R)).
    reference_height : image height at which radius and length are meant.
    mask_threshold : the rain-mask threshold in 8-bit levels; coverage targets refer to it.
    """

    angles: tuple[float, ...] = DEFAULT_ANGLES
    radii: tuple[float, ...] = PAPER_RADII
    densities: tuple[str, ...] = ("light", "medium", "heavy")
    length: tuple[float, float] = (12.0, 40.0)
    brightness: tuple[float, float] = (0.45, 0.85)
    jitter: float = 0.4
    layers: int = 2
    blend: Blend = "add"
    reference_height: int = REFERENCE_HEIGHT
    mask_threshold: int = MASK_THRESHOLD

    def __post_init__(self) -> None:
        for name in ("angles", "radii", "length", "brightness"):
            require_finite_all(name, getattr(self, name))
        require_finite("jitter", self.jitter)
        if not self.angles or any(not -90.0 < float(a) <= 90.0 for a in self.angles):
            raise ParameterError("angles", f"must be a non-empty list in (-90, 90], got {self.angles}")
        if not self.radii or any(float(r) < 0 for r in self.radii):
            raise ParameterError("radii", f"must be a non-empty list of values >= 0, got {self.radii}")
        bad = [d for d in self.densities if d not in DENSITY_COVERAGE]
        if not self.densities or bad:
            raise ParameterError(
                "densities", f"must be among {list(DENSITY_COVERAGE)}, got {self.densities}"
            )
        if len(tuple(self.length)) != 2 or not 0 <= self.length[0] <= self.length[1]:
            raise ParameterError("length", f"must be (min, max) with 0 <= min <= max, got {self.length}")
        if len(tuple(self.brightness)) != 2 or not 0 <= self.brightness[0] <= self.brightness[1] <= 1:
            raise ParameterError("brightness", f"must be (min, max) in [0, 1], got {self.brightness}")
        if not 0 <= self.jitter < 1:
            raise ParameterError("jitter", f"must be in [0, 1), got {self.jitter}")
        if self.layers not in (1, 2):
            raise ParameterError("layers", f"must be 1 or 2, got {self.layers}")
        if self.blend not in ("add", "screen"):
            raise ParameterError("blend", f"must be 'add' or 'screen', got {self.blend!r}")
        if not 1 <= self.mask_threshold <= 255:
            raise ParameterError("mask_threshold", f"must be in 1..255 levels, got {self.mask_threshold}")
        if self.reference_height < 1:
            raise ParameterError("reference_height", f"must be >= 1, got {self.reference_height}")
        for name in ("angles", "radii", "densities", "length", "brightness"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


#: The default sampling ranges.
DEFAULT_CONFIG = SynthConfig()


def tier_sigma(k: int) -> float:
    """Gaussian sigma of the k x k low-pass tier: OpenCV's rule ``0.3 ((k - 1) / 2 - 1) + 0.8``.

    k = 3, 5, 7, 9 give sigma = 0.8, 1.1, 1.4, 1.7 (what ``cv2.GaussianBlur(img, (k, k), 0)``
    uses; the paper states only the kernel sizes).
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"tier size must be odd and >= 1, got {k}")
    return round(0.3 * ((k - 1) / 2 - 1) + 0.8, 6)


@dataclass(frozen=True)
class SynthOptions:
    """Options of a synthesis run that shape its output (recorded in ``rainset.json``).

    Parameters
    ----------
    config : sampling ranges.
    per_image : variants per photo.
    seed : global seed.
    tiers : ``"store"`` writes the four low-pass tiers; ``"lazy"`` records their filters only
        (recompute with :func:`rainset.synth.lowpass_tiers`): the fast choice, four images
        fewer per photo.
    residual : write each sample's exact residual ``rainy - clean`` (``False``: recompute it
        with ``cv2.subtract(rainy, clean)``; one image fewer per sample).
    tier_choice : ``"rule"`` (:func:`rainset.synth.choose_tier`), ``"review"`` (a reviewer
        picks, see :func:`rainset.synth.review_tiers`) or ``"all"`` (every tier is a target).
    max_size : shrink photos so the longer side is at most this (None: full size).
    """

    config: SynthConfig = DEFAULT_CONFIG
    per_image: int = 1
    seed: int = 0
    tiers: Literal["store", "lazy"] = "store"
    tier_choice: Literal["rule", "review", "all"] = "rule"
    max_size: int | None = None
    residual: bool = True

    def __post_init__(self) -> None:
        if self.per_image < 1:
            raise ParameterError("per_image", f"must be >= 1, got {self.per_image}")
        if self.tiers not in ("store", "lazy"):
            raise ParameterError("tiers", f"must be 'store' or 'lazy', got {self.tiers!r}")
        if self.tier_choice not in ("rule", "review", "all"):
            raise ParameterError("tier_choice", f"must be rule, review or all, got {self.tier_choice!r}")
        if self.max_size is not None and self.max_size < 8:
            raise ParameterError("max_size", f"must be >= 8 px, got {self.max_size}")

    def to_json(self) -> dict:
        d = asdict(self)
        d["tier_sigmas"] = {f"{k}x{k}": tier_sigma(k) for k in TIER_SIZES}
        d["reference_height"] = self.config.reference_height
        d["rain_map_scale"] = RAIN_MAP_SCALE
        return d


# ----------------------------------------------------------------------------- exchange


@dataclass(frozen=True)
class ImportOptions:
    """How :func:`rainset.import_dataset` brings a published layout in.

    Parameters
    ----------
    image_format : ``"keep"`` (every file as it is, linked or copied; a JPEG with an EXIF
        rotation is written upright as PNG), or ``"png"``/``"jpg"`` (re-encode).
    link : with ``"keep"``: ``"symlink"``, ``"hardlink"``, ``"copy"``, or None (hard links where
        the filesystem allows, else copies).
    split : ``"train"`` or ``"test"``: every scene in that split (an official test set); None:
        the scene split of ``test_scenes`` / ``test_fraction``.
    test_scenes, test_fraction : the scene split (as :class:`OutputOptions`).
    note : licence / provenance note recorded with the sources.
    key, scene, scene_every : ``layout="paired"`` only: the pairing-key regex, the scene regex,
        or scenes of consecutive chunks of this many frames (see
        :func:`rainset.importer.plan_paired`).
    meta_info : ``layout="basicsr"`` only: a BasicSR meta_info file naming the pairs.
    """

    image_format: Literal["keep", "png", "jpg"] = "keep"
    link: Literal["symlink", "hardlink", "copy"] | None = None
    split: Literal["train", "test"] | None = None
    test_scenes: tuple[str, ...] = ()
    test_fraction: float = OutputOptions.test_fraction
    note: str = "imported published dataset"
    key: str | None = None
    scene: str | None = None
    scene_every: int | None = None
    meta_info: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        if self.image_format not in ("keep", "png", "jpg"):
            raise ParameterError("image_format", f"must be keep, png or jpg, got {self.image_format!r}")
        if self.link is not None and self.image_format != "keep":
            raise ParameterError("link", "needs `image_format` keep (files are placed as they are)")
        object.__setattr__(self, "test_scenes", _scene_ids(self.test_scenes))
        if self.split is not None and self.test_scenes:
            raise ParameterError("split", "give `split` or `test_scenes`, not both")
        if self.scene is not None and self.scene_every is not None:
            raise ParameterError("scene", "give `scene` or `scene_every`, not both")
        if self.scene_every is not None and self.scene_every < 1:
            raise ParameterError("scene_every", "must be >= 1")


#: ``import paired``'s own defaults (folders of the user's, re-encoded as PNG by default).
PAIRED_IMPORT = ImportOptions(image_format="png", note="imported paired folders")


@dataclass(frozen=True)
class ExportOptions:
    """What :func:`rainset.export_dataset` writes (rainset.exchange).

    Parameters
    ----------
    split : ``"train"``, ``"val"``, ``"test"``, or ``"all"`` (one subfolder per split).
    link : how images get there: ``"symlink"``, ``"hardlink"``, ``"copy"``, or None (hard links
        where the filesystem allows, else copies).
    names : ``to="basicsr"``: ``"basicsr"`` (gt/, lq/) or ``"restormer"`` (target/, input/).
    shard_size : ``to="webdataset"``: samples (1000) or megabytes (``"100MB"``) per shard (None:
        rainset.exchange.webdataset.DEFAULT_SHARD_SIZE).
    patch, stride : ``to="spa"``: cut into patch x patch patches every ``stride`` px.
    """

    split: Literal["train", "val", "test", "all"] = "all"
    link: Literal["symlink", "hardlink", "copy"] | None = None
    names: Literal["basicsr", "restormer"] | None = None
    shard_size: str | int | None = None
    patch: int | None = None
    stride: int | None = None


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class ValidateOptions:
    """Options of :func:`rainset.train.validate` (train a reference model, evaluate it).

    ``iters``, ``batch``, ``lr``, ``crop``: None takes the preset's; ``workers`` None: 0 on a
    CPU, 4 on a GPU; ``mask_threshold`` None: the dataset's.
    """

    model: Literal["spanet"] = "spanet"
    preset: Literal["quick", "paper", "released"] = "quick"
    iters: int | None = None
    batch: int | None = None
    lr: float | None = None
    crop: int | None = None
    device: str = "auto"
    seed: int = 0
    threads: int | None = None
    workers: int | None = None
    irnn: Literal["auto", "loop", "sweep", "scan", "numba"] = "auto"
    amp: bool = True
    mask_threshold: int | None = None
    resume: bool = False
    eval_on: tuple[str | os.PathLike, ...] = ()
    tile: int = 1024
    examples: int = 4
    # Evaluation that fits the time (rainset.evaluate): at most eval_max images per scene,
    # evenly spaced (None: all); centre eval_crop squares (None: whole images); save_outputs:
    # write each output to RUN/outputs/<evaluation>/<id>.png for `rainset evaluate`.
    eval_max: int | None = None
    eval_crop: int | None = None
    save_outputs: bool = False
    # The training objective (rainset.train.objectives): None = "timelapse" for a time-lapse
    # dataset, else "paired"; direction_loss adds the rain-direction loss (synth datasets).
    objective: Literal["paired", "timelapse"] | None = None
    direction_loss: bool = False


@dataclass(frozen=True)
class EvaluateOptions:
    """Options of ``rainset evaluate`` (:func:`rainset.evaluate.evaluate_outputs`): the split
    scored (``"all"`` on the command line is None there) and the centre crop (None: whole
    images)."""

    split: str = "test"
    eval_crop: int | None = None


@dataclass(frozen=True)
class DerainOptions:
    """Options of :func:`rainset.train.derain_files` (a trained checkpoint on images or video)."""

    device: str = "auto"
    tile: int = 1024
    overlap: int = 32
    crf: int = 18


# ----------------------------------------------------------------------------- helpers


def split_fields(kwargs: dict, *classes: type) -> list[dict]:
    """Share keyword arguments out among option classes by field name: one dict per class.

    Raises
    ------
    ParameterError
        A keyword that is no field of any of the classes.
    """
    names = [{f.name for f in fields(c)} for c in classes]
    out: list[dict] = [{} for _ in classes]
    for key, value in kwargs.items():
        for i, ns in enumerate(names):
            if key in ns:
                out[i][key] = value
                break
        else:
            known = sorted(set().union(*names))
            raise ParameterError(key, f"is not an option here (options: {', '.join(known)})")
    return out


def merged(base, given: dict):
    """``base`` (an options instance, or its class for the defaults) with ``given`` replaced."""
    if isinstance(base, type):
        return base(**given)
    return replace(base, **given) if given else base
