"""Directional rain synthesis: parameter sampling, rain layer, composite, labels, low-pass tiers.

The recipe follows the intensity-aware deraining paper's dataset (Xu et al., Sec. III-D:
Gaussian-blurred noise, 7 directions 0, +-15, +-30, +-40 degrees from the negative y axis, blur
radius 0.2 .. 1.0 in steps of 0.2, low-pass ground truth from Gaussian filters of 3, 5, 7 and
9) with the rain-direction paper's labels (UDRDR, Sec. 3.1 and 4.1). How the paper's Photoshop
step drew the direction is not stated; the motion-blur streak of :mod:`rainset.streaks` and
its peak normalisation are our own, documented choices (``docs/synth.md``).

Sampling is apart from rendering: :func:`sample_params` draws a frozen :class:`RainParams`
from a generator seeded by :func:`sample_seed` (global seed, the photo's relative path, the
variant number), and :func:`render` is a pure function of (clean image, params). The params
go to the manifest, so every sample can be re-rendered bit for bit. Kernel, sampling and the
rain layer live in :mod:`rainset.streaks` (re-exported here); this module composites, labels,
filters the low-pass tiers and writes datasets.

About 610 lines: rendering, labels, the preview grid and the dataset run with its worker
processes; photos (:mod:`rainset.photos`) and low-pass tiers (:mod:`rainset.tiers`) are split
out and re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, NamedTuple

import cv2
import numpy as np

from rainset import sheets
from rainset._encode import EncodePool, InOrder
from rainset.dataset import DatasetWriter, SplitRule, WriterHandle, layout
from rainset.errors import InputError
from rainset.fsutil import sha256_file
from rainset.image import MASK_THRESHOLD, channel_max
from rainset.inputs import check_outputs
from rainset.options import (  # noqa: F401 - the options and constants live there
    RAIN_MAP_SCALE,
    TIER_DETAIL_KEPT,
    TIER_SIZES,
    SynthOptions,
    tier_sigma,
)
from rainset.photos import (  # noqa: F401 - split out of this module; names kept here
    BUNDLED_PHOTOS,
    Photo,
    bundled_photos,
    check_photos,
    find_photos,
    find_semantic,
    load_photo,
    photo_orientation,
)
from rainset.streaks import (
    DEFAULT_CONFIG,
    DENSITY_COVERAGE,
    PAPER_ANGLES,
    PAPER_RADII,
    REFERENCE_HEIGHT,
    Blend,
    RainParams,
    StreakLayer,
    SynthConfig,
    _r,
    direction_angle,
    direction_class,
    direction_kernels,
    rain_layer,
    rain_layer_add,
    sample_params,
    sample_seed,
)
from rainset.tiers import (  # noqa: F401 - split out of this module; names kept here
    choose_tier,
    detail_kept,
    lowpass_tiers,
    review_tiers,
    tier_name,
    tier_sheet,
)

__all__ = [
    "BUNDLED_PHOTOS",
    "DENSITY_COVERAGE",
    "PAPER_ANGLES",
    "PAPER_RADII",
    "RAIN_MAP_SCALE",
    "REFERENCE_HEIGHT",
    "TIER_DETAIL_KEPT",
    "TIER_SIZES",
    "Photo",
    "RainParams",
    "Rendered",
    "StreakLayer",
    "SynthConfig",
    "SynthEvent",
    "SynthOptions",
    "bundled_photos",
    "check_photos",
    "choose_tier",
    "composite",
    "detail_kept",
    "direction_kernels",
    "find_photos",
    "find_semantic",
    "labels",
    "load_photo",
    "lowpass_tiers",
    "parse_angles",
    "preview_sheet",
    "rain_layer",
    "render",
    "render_rain_frames",
    "review_tiers",
    "sample_id",
    "sample_params",
    "sample_seed",
    "synthesize",
    "tier_sigma",
]

def parse_angles(spec: str) -> tuple[float, ...]:
    """Parse an angle list: ``"0,15,30,40"`` -> (0, -15, 15, -30, 30, -40, 40).

    An unsigned entry means both sides (the paper's +-15); a signed one (``+15``, ``-15``)
    pins that side only. Angles are degrees from vertical in (-90, 90].

    Raises
    ------
    ValueError
        An entry is not a number or out of range, or the list is empty.
    """
    out: set[float] = set()
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"{part!r} is not an angle in degrees") from None
        if not -90.0 < value <= 90.0:
            raise ValueError(f"angle {part} is outside (-90, 90] degrees from vertical")
        out.add(value)
        if part[0] not in "+-" and value not in (0.0, 90.0):
            out.add(-value)
    if not out:
        raise ValueError(f"no angles in {spec!r}")
    return tuple(sorted(out, key=lambda a: (abs(a), a)))


@dataclass(frozen=True)
class Rendered:
    """One rendered sample.

    Attributes
    ----------
    rainy : (H, W, 3) uint8, the composite O.
    rain : (H, W) float32, the rain layer R before any clipping.
    residual : (H, W, 3) uint8, exactly ``rainy - clean`` (rain only brightens).
    mask : (H, W) bool, :func:`rainset.image.rain_mask` of (rainy, clean).
    coverage : float, measured: the mask's fraction of pixels.
    """

    rainy: np.ndarray
    rain: np.ndarray
    residual: np.ndarray
    mask: np.ndarray
    coverage: float


def composite(clean: np.ndarray, rain: np.ndarray, *, blend: Blend = "add") -> np.ndarray:
    """Put a rain layer over a clean image; never darkens or blurs the background.

    Parameters
    ----------
    clean : (H, W, 3) uint8 ndarray
    rain : (H, W) float ndarray, >= 0
    blend : ``"add"``: ``O = min(B + round(255 R), 255)`` per channel; ``"screen"``:
        ``O = B + round(min(R, 1) (255 - B))``.

    Returns
    -------
    rainy : (H, W, 3) uint8 ndarray, >= clean everywhere
    """
    if clean.ndim != 3 or clean.shape[2] != 3 or clean.dtype != np.uint8:
        raise ValueError(f"clean must be (H, W, 3) uint8, got {clean.shape} {clean.dtype}")
    if rain.shape != clean.shape[:2]:
        raise ValueError(f"rain must be {clean.shape[:2]}, got {rain.shape}")
    if blend == "add":
        levels = cv2.convertScaleAbs(np.asarray(rain, np.float32), alpha=255.0)
        return cv2.add(clean, cv2.cvtColor(levels, cv2.COLOR_GRAY2RGB))
    if blend == "screen":
        r = np.minimum(np.asarray(rain, np.float32), 1.0)[:, :, None]
        add = np.rint(r * (255.0 - clean.astype(np.float32)))
        return (clean + add.astype(np.uint8)).astype(np.uint8)
    raise ValueError(f"blend must be 'add' or 'screen', got {blend!r}")


def render(
    clean: np.ndarray, params: RainParams, *, mask_threshold: int = MASK_THRESHOLD
) -> Rendered:
    """Render one sample: rain layer, composite, exact residual, mask, measured coverage.

    A pure function of ``(clean, params)``: the same inputs give the same bytes.

    Parameters
    ----------
    clean : (H, W, 3) uint8 ndarray
    params : from :func:`sample_params` or :meth:`RainParams.from_dict`.
    mask_threshold : in 8-bit levels (the shared rain-mask definition, default 13).
    """
    if not 1 <= int(mask_threshold) <= 255:
        raise ValueError(f"mask_threshold must be in 1..255 levels, got {mask_threshold}")
    if params.blend == "add":  # one compiled pass, the same bytes as the steps below (tested)
        fused = rain_layer_add(clean, params, int(mask_threshold))
        if fused is not None:
            rain, rainy, residual, mask, hits = fused
            return Rendered(rainy, rain, residual, mask, float(hits / mask.size))
    rain = rain_layer(clean.shape, params)
    rainy = composite(clean, rain, blend=params.blend)
    residual = cv2.subtract(rainy, clean)
    # rain_mask(rainy, clean) exactly (tested): rainy >= clean, so max_c(rainy - clean) is
    # the residual's channel maximum.
    mask = channel_max(residual) >= int(mask_threshold)
    return Rendered(rainy, rain, residual, mask, float(np.count_nonzero(mask) / mask.size))


def labels(params: RainParams, *, coverage: float | None = None) -> dict:
    """The label set of a sample, JSON-ready.

    Keys: ``theta`` (degrees from vertical, positive = top leans right), ``direction_angle``
    (the rain-direction dataset's angle, (90 - theta) mod 180), ``direction_class`` (its 18-bin
    class; ties go to the bin nearer vertical) and ``direction_soft`` ([bin, weight] pairs),
    ``radius``, ``sigma_px``, ``length_px``, ``coverage_target``, ``coverage`` (measured, when
    given), ``density``, ``brightness``, ``blend``, ``seed``.
    """
    hard, soft = direction_class(params.angle)
    out = {
        "theta": params.angle,
        "direction_angle": _r(direction_angle(params.angle)),
        "direction_class": hard,
        "direction_soft": [[b, w] for b, w in soft],
        "radius": params.radius,
        "sigma_px": params.sigma,
        "length_px": params.length,
        "coverage_target": params.coverage,
        "density": params.density,
        "brightness": params.brightness,
        "blend": params.blend,
        "seed": params.seed,
    }
    if coverage is not None:
        out["coverage"] = _r(coverage)
    return out


# ----------------------------------------------------------------------------- video frames


def render_rain_frames(
    background: np.ndarray,
    n_frames: int,
    *,
    angle: float = 0.0,
    radius: float = 0.6,
    density: str = "light",
    config: SynthConfig = DEFAULT_CONFIG,
    rng: np.random.Generator | int | None = None,
) -> Iterator[np.ndarray]:
    """Rainy video frames over a static background: a fresh rain layer per frame.

    Parameters
    ----------
    background : (H, W, 3) uint8 ndarray
    n_frames : number of frames.
    angle, radius, density : pinned for every frame; length and brightness are drawn per
        frame from ``config``.
    rng : generator or seed.

    Yields
    ------
    frame : (H, W, 3) uint8 ndarray
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    rng = np.random.default_rng(rng)
    for _ in range(n_frames):
        p = sample_params(
            background.shape, config=config, rng=rng, angle=angle, radius=radius, density=density
        )
        yield composite(background, rain_layer(background.shape, p), blend=p.blend)


# ----------------------------------------------------------------------------- preview


def preview_sheet(
    image: np.ndarray,
    *,
    angles: tuple[float, ...] = PAPER_ANGLES,
    radii: tuple[float, ...] = PAPER_RADII,
    density: str = "medium",
    config: SynthConfig = DEFAULT_CONFIG,
    seed: int = 0,
    cell: int = 300,
    zoom: int = 3,
) -> np.ndarray:
    """A contact sheet of the angle x radius grid on one image (rows: angles, columns: radii).

    Every cell renders the whole image with the same seed (only angle and radius change) and
    shows its central ``cell / zoom`` px square magnified ``zoom`` times (nearest neighbour),
    so streak widths can be compared pixel by pixel.

    Returns
    -------
    sheet : (H', W', 3) uint8 ndarray
    """
    if zoom < 1 or cell < zoom:
        raise ValueError(f"need zoom >= 1 and cell >= zoom, got cell={cell}, zoom={zoom}")
    h, w = image.shape[:2]
    ch, cw = min(cell // zoom, h), min(cell // zoom, w)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    rows = []
    for a in sorted(angles, key=lambda t: (abs(t), t)):
        row = []
        for r in radii:
            p = sample_params(
                image.shape, config=config, rng=seed, angle=a, radius=r, density=density
            )
            out = composite(image, rain_layer(image.shape, p), blend=p.blend)
            crop = sheets.magnify(out[y0 : y0 + ch, x0 : x0 + cw], zoom)
            row.append(sheets.captioned(crop, f"{a:+g} deg  r={r:g}"))
        rows.append(row)
    return sheets.grid(rows)


# ----------------------------------------------------------------------------- datasets


def sample_id(photo: Photo, variant: int) -> str:
    """A sample's id: the photo's stem and the variant, ``"<stem>_v<variant>"``."""
    return f"{photo.stem}_v{variant}"


class SynthEvent(NamedTuple):
    """One sample of :func:`synthesize`: its id and record, or ``skipped`` when it was there."""

    id: str
    record: dict | None
    skipped: bool


@dataclass(frozen=True)
class _Task:
    photo: Photo
    sha256: str
    variants: tuple[int, ...]
    out: WriterHandle  # the dataset's images, written as its writer would
    options: SynthOptions
    tier: int | None  # a reviewer's choice
    semantic: Path | None


def synthesize(
    photos: list[Photo],
    root: str | os.PathLike,
    *,
    options: SynthOptions | None = None,
    workers: int = 1,
    split_rule: SplitRule | None = None,
    image_format: Literal["png", "jpg"] = "png",
    jpeg_quality: int = 95,
    semantic_dir: str | os.PathLike | None = None,
    tier_decisions: dict[str, int | None] | None = None,
) -> Iterator[SynthEvent]:
    """Write a paired dataset of rainy/clean samples from clean photos; resumable.

    Each photo gives ``options.per_image`` samples, each sampled from
    ``sample_seed(options.seed, photo.key, variant)`` and rendered with :func:`render`. The
    scene of a sample is its photo's key, so all variants of a photo share a split. Files:
    ``clean/<stem>``, ``rainy|mask|rain_map|residual/<stem>_v<k>``, ``tiers/<k>x<k>/<stem>``,
    ``semantic/<stem>``. Rain maps are 16-bit PNG (value = R / :data:`RAIN_MAP_SCALE`);
    residuals and masks are always PNG, so with the default PNG images
    ``clean + residual == rainy`` holds on disk.

    Parameters
    ----------
    photos : from :func:`bundled_photos` or :func:`find_photos`.
    root : the dataset folder; an unfinished one with the same options is resumed (samples
        already in its manifest are skipped, ``skipped=True``).
    options : what shapes the output (default ``SynthOptions()``).
    workers : processes rendering and encoding photos; the output does not depend on it.
    split_rule, image_format, jpeg_quality : as :class:`rainset.dataset.DatasetWriter`.
    semantic_dir : label maps copied alongside, matched by :func:`find_semantic`.
    tier_decisions : for ``tier_choice="review"``: photo key -> chosen k, or None to drop the
        photo (from :func:`review_tiers`).

    Yields
    ------
    event : SynthEvent, one per sample, in photo then variant order.
    """
    options = options or SynthOptions()
    split_rule = split_rule or SplitRule()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if options.tier_choice == "review" and tier_decisions is None:
        raise ValueError("tier_choice='review' needs tier_decisions (see review_tiers)")
    root = Path(root)
    check_outputs({"root": root}, [p.path for p in photos])
    params = {**options.to_json(), "semantic": semantic_dir is not None}
    semantic = {p.key: find_semantic(p, semantic_dir) for p in photos} if semantic_dir else {}
    check_photos(photos)
    with DatasetWriter(
        root,
        kind="paired",
        params=params,
        split_rule=split_rule,
        image_format=image_format,
        jpeg_quality=jpeg_quality,
        tool="rainset synth",
    ) as writer:
        plan: list[tuple[Photo, list[str], _Task | None]] = []  # photos in order
        for photo in photos:
            ids = [sample_id(photo, v) for v in range(options.per_image)]
            todo = tuple(v for v, i in enumerate(ids) if not writer.has(i))
            digest = sha256_file(photo.path) if todo else None  # else recorded by an earlier run
            note = photo.note or f"clean photo {photo.key}"
            orientation = photo_orientation(photo.path)
            if orientation != 1:  # read upright; say so, since the stored pixels are sideways
                note += f"; EXIF orientation {orientation} applied on read"
            writer.add_source(photo.path, note=note, sha256=digest)
            tier = None
            if options.tier_choice == "review":
                if photo.key not in tier_decisions:
                    raise ValueError(f"tier_decisions has no entry for {photo.key!r}")
                tier = tier_decisions[photo.key]
                if tier is None:  # the reviewer rejected the photo
                    continue
            task = None
            if todo:
                task = _Task(
                    photo,
                    digest,
                    todo,
                    writer.handle(known=()),
                    options,
                    tier,
                    semantic.get(photo.key),
                )
            plan.append((photo, ids, task))
        tasks = [t for _, _, t in plan if t is not None]
        # Records arrive sample by sample (in photo then variant order) and join the manifest
        # in that order as soon as their images are on disk (encoded on a thread pool while
        # the next samples render), so an interrupted run resumes after the last sample written.
        results = _run(tasks, workers)
        ready: InOrder[tuple[str, dict | None]] = InOrder()

        def release(wait: bool = False) -> Iterator[SynthEvent]:
            for sid, record in ready.ready(wait=wait):
                if record is not None:
                    writer.add(record)
                yield SynthEvent(sid, record, record is None)

        try:
            for _, ids, task in plan:
                todo = {sample_id(task.photo, v) for v in task.variants} if task is not None else set()
                for sid in ids:
                    if sid in todo:
                        record, writes = next(results)
                        if record["id"] != sid:  # pragma: no cover - an ordering bug
                            raise RuntimeError(f"expected sample {sid!r}, rendered {record['id']!r}")
                        ready.put((sid, record), writes)
                    else:
                        ready.put((sid, None))
                    yield from release()
            yield from release(wait=True)
        finally:
            results.close()  # its encode pool: waits for (or, on an error, drops) what is left


#: Variants per task when photos are rendered by worker processes: each task loads its photo
#: and writes the shared images again, so a few variants a task; small enough that a kill
#: loses little.
_CHUNK = 4


def _run(tasks: list[_Task], workers: int) -> Iterator[tuple[dict, list]]:
    """Records of :func:`_render_photo` and their pending writes (none from a worker, whose
    images are on disk), sample by sample in task order, here or in a pool."""
    chunks = [
        replace(t, variants=t.variants[i : i + _CHUNK])
        for t in tasks
        for i in range(0, len(t.variants), _CHUNK)
    ]
    if workers == 1 or len(chunks) <= 1:
        with EncodePool() as enc:  # images encode on every core while the next sample renders
            for task in tasks:
                yield from _render_photo(task, enc)
        return
    from rainset._splat_numba import warm_up
    from rainset._workers import worker_pool

    warm_up()  # forked workers inherit the loaded rendering kernel
    with worker_pool(min(workers, len(chunks))) as pool:
        for records in pool.map(_render_chunk, chunks):
            for record in records:
                yield record, []


def _render_chunk(task: _Task) -> list[dict]:
    """A chunk in a worker process: its images encoded on a pool there, all on disk before
    the records go back."""
    with EncodePool() as enc:
        done = list(_render_photo(task, enc))
        for _, writes in done:
            for f in writes:
                f.result()
    return [record for record, _ in done]


def _save(task: _Task, enc: EncodePool, writes: list, stem: str, image: np.ndarray, *,
          lossless: bool = False) -> str:
    """Write through the writer's handle (its paths, extension rule, settings) on the encode
    pool, from any process; the write's future joins ``writes``. Photo stems keep their own
    dots (``a.jpg.png`` -> ``clean/a.jpg.png``)."""
    writes.append(
        enc.submit(task.out.write_image, stem, image, lossless=lossless, check_suffix=False)
    )
    return task.out.image_relpath(stem, image, lossless=lossless)


def _render_photo(task: _Task, enc: EncodePool) -> Iterator[tuple[dict, list]]:
    """Render every pending variant of one photo and hand its images to ``enc``; yield each
    record with the futures of the writes it needs (the record joins the manifest once they
    are done)."""
    photo, opt = task.photo, task.options
    clean = load_photo(photo.path, max_size=opt.max_size)
    shared_writes: list = []

    def save_shared(stem: str, image: np.ndarray) -> str:
        return _save(task, enc, shared_writes, stem, image)

    shared: dict = {"clean": save_shared(layout.synth_clean(photo.stem), clean)}
    tiers = lowpass_tiers(clean) if opt.tiers == "store" or opt.tier_choice == "rule" else {}
    if opt.tiers == "store":
        shared["tiers"] = {
            tier_name(k): save_shared(layout.synth_tier(tier_name(k), photo.stem), t)
            for k, t in tiers.items()
        }
    if opt.tier_choice == "rule":
        k, kept = choose_tier(clean, tiers)
        shared["tier"] = tier_name(k)
        shared["tier_detail_kept"] = dict(zip(map(tier_name, sorted(tiers)), kept))
    elif opt.tier_choice == "review":
        shared["tier"] = tier_name(task.tier)
    if task.semantic is not None:
        shared["semantic"] = save_shared(layout.synth_semantic(photo.stem), _load_labels(task, clean))
    source = {"source": photo.key, "source_sha256": task.sha256}
    for v in task.variants:
        seed = sample_seed(opt.seed, photo.key, v)
        params = sample_params(clean.shape, config=opt.config, rng=seed)
        out = render(clean, params, mask_threshold=opt.config.mask_threshold)
        stem = f"{photo.stem}_v{v}"
        rain16 = np.clip(np.rint(out.rain / RAIN_MAP_SCALE), 0, 65535).astype(np.uint16)
        writes = list(shared_writes)
        files = {
            "rainy": _save(task, enc, writes, layout.synth_rainy(stem), out.rainy),
            "clean": shared["clean"],
            "mask": _save(task, enc, writes, layout.synth_mask(stem), out.mask),
            "rain_map": _save(task, enc, writes, layout.synth_rain_map(stem), rain16),
        }
        if opt.residual:
            files["residual"] = _save(
                task, enc, writes, layout.synth_residual(stem), out.residual, lossless=True
            )
        yield (
            {
                "id": sample_id(photo, v),
                "scene": photo.key,
                **files,
                **{k: v for k, v in shared.items() if k != "clean"},
                "labels": labels(params, coverage=out.coverage),
                "params": params.to_dict(),
                "variant": v,
                "mask_threshold": opt.config.mask_threshold,
                "rain_map_scale": RAIN_MAP_SCALE,
                **source,
            },
            writes,
        )


def _load_labels(task: _Task, clean: np.ndarray) -> np.ndarray:
    """A semantic map as stored (grey ids or RGB colours), resized by nearest neighbour."""
    data = np.fromfile(task.semantic, dtype=np.uint8)
    from rainset._cvlog import opencv_quiet

    with opencv_quiet():  # a bad file is our one-line error, not OpenCV's log lines
        lab = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if lab is None:
        raise InputError(f"{task.semantic}: not a readable label map.")
    if lab.ndim == 3:
        lab = cv2.cvtColor(lab[:, :, :3], cv2.COLOR_BGR2RGB)
    if lab.shape[:2] != clean.shape[:2]:
        if task.options.max_size is None:
            raise InputError(
                f"{task.semantic}: label map is {lab.shape[1]}x{lab.shape[0]} but its photo "
                f"{task.photo.key} is {clean.shape[1]}x{clean.shape[0]}."
            )
        lab = cv2.resize(lab, (clean.shape[1], clean.shape[0]), interpolation=cv2.INTER_NEAREST)
    return lab
