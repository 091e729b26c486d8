"""The ``rainset pairs`` pipeline: scenes in, static segments, N frames each, frame pairs out.

For every scene of the input (a video file or a folder of frames) the frames are scored once,
streaming (:mod:`rainset.timelapse`); kept segments are decoded a second time to take their N
frames at full resolution, with foreground masks and optionally a pseudo ground truth. The
output is a ``timelapse`` dataset (``docs/format.md``) plus, beside it, a stats CSV per scene,
contact sheets and ``report.md`` saying why each stretch was kept or rejected.

Scene ids and splits: one scene per input entry, named after it (the file stem or folder name,
made path-safe; entries whose names collide keep their full name). Segments of a scene are
``<scene>/s00``, ``<scene>/s01`` ...; the dataset's ``scene`` (what splits go by) is the input
entry, so two segments of one place never straddle train and test.

About 670 lines: the per-scene run (score, decode the kept segments, masks, pseudo-GT, pairs)
and its report and contact sheets share one scene's state; the scores themselves live in
:mod:`rainset.timelapse`, the orchestration in :mod:`rainset.pipelines.pairs`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from rainset import sheets
from rainset._encode import EncodePool
from rainset.dataset import DatasetWriter, SplitRule, layout
from rainset.errors import EmptyResultError, InputError, ParameterError
from rainset.fsutil import atomic_write_text
from rainset.image import is_image_path, write_image
from rainset.inputs import SourcePlan, check_outputs, natural_sorted, plan_inputs, scene_id
from rainset.options import PairsOptions  # the options live there
from rainset.stabilize import warp
from rainset.timelapse import (
    N_FRAMES,
    FrameScore,
    Rejection,
    Segment,
    StaticConfig,
    StaticScorer,
    choose_frames,
    find_segments,
    foreground_masks,
    sample_pairs,
    write_stats_csv,
)
from rainset.video import VIDEO_SUFFIXES, iter_frames, list_frame_files, probe

logger = logging.getLogger(__name__)


@dataclass
class SceneResult:
    """What happened to one scene; also stored as ``scenes/<scene>.json`` for resuming."""

    scene: str
    source: str
    n_frames: int
    fps: float | None
    segments: list[Segment]
    rejections: list[Rejection]
    frames: dict[str, list[int]] = field(default_factory=dict)  # segment id -> chosen indices
    pairs: dict[str, int] = field(default_factory=dict)  # segment id -> pairs written
    sheets: list[str] = field(default_factory=list)
    stats: str = ""

    def segment_id(self, i: int) -> str:
        return f"{self.scene}/s{i:02d}"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> SceneResult:
        d = dict(d)
        d["segments"] = [Segment(**s) for s in d["segments"]]
        d["rejections"] = [Rejection(**r) for r in d["rejections"]]
        return cls(**d)


# ----------------------------------------------------------------------------- inputs


def find_scenes(
    path: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    exclude: Iterable[str | os.PathLike] = (),
) -> list[tuple[str, Path]]:
    """The scenes of an input and their stable ids.

    Parameters
    ----------
    path : a video file (one scene); a folder of frames (one scene); or a folder whose entries
        are scenes: video files (by suffix) and sub-folders of frames. Other files are skipped
        with a log line.
    root : scene ids are paths relative to this folder (see :func:`rainset.inputs.scene_id`).
    exclude : outputs inside ``path``; never taken for scenes.

    Returns
    -------
    scenes : list of (scene id, source path), in natural order of the entry names. The id
        follows :func:`rainset.inputs.scene_id` (the stem or folder name, or the path relative
        to ``root``) and does not depend on the other entries; :func:`plan_scenes` refuses
        ids that collide.

    Raises
    ------
    InputError
        The path is missing, or a folder holds no video and no frame folder.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder.")
    if path.is_file():
        return [(scene_id(path, root=root), path)]
    skip = {Path(os.path.realpath(e)) for e in exclude}
    entries, skipped = [], []
    for e in natural_sorted(path.iterdir(), key=lambda p: p.name):
        if e.name.startswith(".") or Path(os.path.realpath(e)) in skip:
            continue
        if e.is_file() and e.suffix.lower() in VIDEO_SUFFIXES:
            entries.append(e)
        elif e.is_dir() and list_frame_files(e):
            entries.append(e)
        elif not (e.is_file() and is_image_path(e)):
            skipped.append(e.name)
    images = [e for e in path.iterdir() if e.is_file() and is_image_path(e)]
    if not entries:
        if images:
            return [(scene_id(path, root=root), path)]  # the folder itself is one scene's frames
        raise InputError(f"{path}: no video files and no folders of frames in it.")
    if images:
        logger.warning("%s: ignoring %d loose image files beside the scenes", path, len(images))
    if skipped:
        logger.info("%s: skipped %s (not a video or a frame folder)", path, ", ".join(skipped))
    return [(scene_id(e, root=root), e) for e in entries]


def plan_scenes(
    input_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    scene: str | None = None,
    allow_duplicate_sources: bool = False,
) -> SourcePlan:
    """The scenes :func:`build_pairs` will run, checked before anything is written.

    ``out`` may not be or contain ``input_path``; inside it, it is left out of the scenes and
    the hashes (a note says so). Scene ids follow :func:`rainset.inputs.scene_id`; ``scene``
    names the single scene of a video or frame folder. See :func:`rainset.inputs.plan_sources`
    for the refusals (one id for two contents, one content under two ids).
    """
    check_outputs({"out": out}, [input_path])  # before listing: out may not hold the input
    found = find_scenes(input_path, root=root, exclude=[out])
    if scene is not None and len(found) != 1:
        raise ParameterError("scene", f"names a single scene; {input_path} holds {len(found)}")
    plan = plan_inputs(
        [p for _, p in found], out, ids=None if scene else [sid for sid, _ in found], scene=scene,
        allow_duplicates=allow_duplicate_sources, checked=[input_path],
    )  # fmt: skip
    return plan


# ----------------------------------------------------------------------------- analysis


class _Thumbs:
    """A few evenly spread thumbnails of a stream of unknown length (stride doubles).

    ``expected``: the frame count the source declares (0: unknown). The stride the stream ends
    with is then known from the start, and only the thumbnails :meth:`three` returns are made
    (each costs an RGB conversion of a frame scored on its luma plane). A stream longer than
    declared still doubles the stride; a middle thumbnail not made is then the nearest made.
    """

    def __init__(self, width: int = 240, keep: int = 16, expected: int = 0) -> None:
        self.width, self.keep, self.stride = width, keep, 1
        self.items: list[tuple[int, np.ndarray | None]] = []
        self.last: tuple[int, object] | None = None
        self.wanted: set[int] | None = None  # None: every item's thumbnail
        if expected > 0:
            while -(-expected // self.stride) > keep:
                self.stride *= 2
            m = -(-expected // self.stride)  # items: the multiples of the stride
            n_list = m + ((expected - 1) % self.stride != 0)  # and the last frame
            mid = n_list // 2
            self.wanted = {0, self.stride * mid if mid < m else expected - 1}  # the last: at the end

    def _small(self, frame) -> np.ndarray:
        rgb = frame if isinstance(frame, np.ndarray) else frame.rgb()
        return sheets.fit_width(rgb, self.width, upscale=True)

    def add(self, i: int, frame) -> None:
        """Frame ``i``: an RGB array or a :class:`rainset._analysis_frames.DecodedFrame`."""
        if i % self.stride == 0:
            made = self.wanted is None or i in self.wanted
            self.items.append((i, self._small(frame) if made else None))
            if len(self.items) > self.keep:
                self.stride *= 2
                self.items = [t for t in self.items if t[0] % self.stride == 0]
        self.last = (i, frame)

    def three(self) -> list[tuple[int, np.ndarray]]:
        """First, middle and last thumbnail."""
        items = list(self.items)
        last_i, last = self.last if self.last is not None else (None, None)
        if last_i is not None and items[-1][0] != last_i:
            items.append((last_i, None))
        out = []
        for j in (0, len(items) // 2, len(items) - 1):
            i, img = items[j]
            if img is None and i != last_i:  # not made (a miscounted stream): the nearest made
                made = [t[0] for t in items if t[1] is not None] + [last_i]
                i = min(made, key=lambda k: (abs(k - i), k))
                img = dict(items).get(i)
            if img is None:
                img = self._small(last)
            out.append((i, img))
        return out


#: Frames decoded ahead of the scoring (memory: that many decoded frames, 0.5 MB each at
#: 720 x 480, 3 MB at 1080p, in YUV). Eight: the decoding thread (one FFmpeg thread on a
#: 2-core machine, see rainset._analysis_frames) rides out the scoring's slower frames (a
#: new reference, a chunk's medians) instead of waiting on a full queue (issue 14).
_AHEAD = 8


def analysis_pass(
    source: str | os.PathLike,
    *,
    config: StaticConfig | None = None,
    min_length: int = N_FRAMES,
    expected: int = 0,
) -> tuple[list[FrameScore], list[Segment], list[Rejection], int, _Thumbs]:
    """The first read of a scene: :func:`analyse_scene` on its luma planes
    (:func:`rainset._analysis_frames.iter_decoded`, decoding on a thread a few frames ahead of
    the scoring), plus the thumbnails of its contact sheet (``expected``: the frame count the
    source declares). ``benchmarks/bench_timelapse.py`` times this against decoding alone."""
    from rainset._analysis_frames import iter_decoded

    thumbs = _Thumbs(expected=expected)
    frames = iter_decoded(source, ahead=_AHEAD)
    try:
        out = analyse_scene(_tap(frames, thumbs), config=config, min_length=min_length)
    finally:
        frames.close()  # stops the decoding thread at once if the scoring failed
    return (*out, thumbs)


def analyse_scene(
    frames: Iterable[np.ndarray],
    *,
    config: StaticConfig | None = None,
    min_length: int = N_FRAMES,
) -> tuple[list[FrameScore], list[Segment], list[Rejection], int]:
    """Score every frame of one source and find its static segments (streaming).

    Parameters
    ----------
    frames : iterable of (H, W, 3) uint8 ndarray, e.g. ``iter_frames(source)``, or of
        frames of :func:`rainset._analysis_frames.iter_decoded` (scored on their luma plane).
    config, min_length : see :class:`StaticConfig` and :func:`find_segments`.

    Returns
    -------
    scores, segments, rejections : see :func:`rainset.timelapse.find_segments`.
    factor : the analysis downscale factor used (for :func:`foreground_masks`).
    """
    scorer = StaticScorer(config or StaticConfig())
    scores = [r for frame in frames for r in scorer.update(frame)]
    scores += scorer.finish()
    segments, rejections = find_segments(scores, min_length=min_length)
    return scores, segments, rejections, scorer.factor or 1


def _tap(frames: Iterable, thumbs: _Thumbs) -> Iterator:
    for i, frame in enumerate(frames):
        thumbs.add(i, frame)
        yield frame


def _status(n: int, result: SceneResult) -> list[str]:
    status = [""] * n
    for i, s in enumerate(result.segments):
        for j in range(s.start, s.stop):
            status[j] = result.segment_id(i)
    for r in result.rejections:
        for j in range(r.start, r.stop):
            status[j] = f"rejected: {r.reason}"
    return status


# ----------------------------------------------------------------------------- pipeline


def build_pairs(
    input_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    options: PairsOptions | None = None,
    split_rule: SplitRule | None = None,
    image_format: Literal["png", "jpg"] = "png",
    jpeg_quality: int = 95,
    note: str = "",
    scenes: SourcePlan | None = None,
    root: str | os.PathLike | None = None,
    scene: str | None = None,
    allow_duplicate_sources: bool = False,
    probed: dict | None = None,
) -> Iterator[SceneResult]:
    """Make a time-lapse pairs dataset from every scene of ``input_path`` (resumable).

    Parameters
    ----------
    input_path : see :func:`find_scenes`.
    out : dataset folder. Rerunning with the same options resumes; scenes already finished
        (``scenes/<scene>.json``) are not decoded again.
    options : frames, pairs, masks, pseudo-GT and thresholds.
    split_rule : scene -> split (default :class:`SplitRule`'s hashed 20 % test).
    image_format, jpeg_quality : how frames (and clean images) are stored.
    note : licence / provenance note recorded with every source.
    scenes : ``plan_scenes(input_path, out, ...)``, when the caller already has it.
    root, scene, allow_duplicate_sources : scene ids and duplicate inputs, see
        :func:`plan_scenes` (used when ``scenes`` is not given).
    probed : ``check_sources(scenes, out)``, when the caller already has it (each source is
        then not opened again).

    Yields
    ------
    result : SceneResult, one per scene, as each is finished. ``report.md`` is written after
        the last.
    """
    out = Path(out)
    options = options or PairsOptions()
    if scenes is None:
        scenes = plan_scenes(input_path, out, root=root, scene=scene,
                             allow_duplicate_sources=allow_duplicate_sources)  # fmt: skip
    infos = check_sources(scenes, out) if probed is None else probed
    results = []
    with EncodePool() as enc, DatasetWriter(  # frames encode on every core (rainset._encode)
        out, kind="timelapse", params=options.params(), split_rule=split_rule or SplitRule(),
        image_format=image_format, jpeg_quality=jpeg_quality, tool="rainset pairs", encoder=enc,
    ) as writer:  # fmt: skip
        for src in scenes.sources:
            scene, source = src.scene, src.path
            done = layout.tl_scene_result(out, scene)
            result = None
            # Every scene's source, finished ones included: a killed run may not have recorded it.
            writer.add_source(source, note=note, sha256=src.sha256, scene=scene)
            if done.is_file():
                result = SceneResult.from_json(json.loads(done.read_text(encoding="utf-8")))
                if not _complete(result, writer, options):
                    logger.warning("%s: records missing from %s; redoing the scene", scene, out)
                    result = None
            if result is None:
                result = _build_scene(scene, source, out, writer, options, infos.get(scene))
                atomic_write_text(done, json.dumps(result.to_json(), indent=1) + "\n")
            results.append(result)
            yield result
    write_report(out, results, options, str(input_path))


def check_sources(scenes: SourcePlan, out: str | os.PathLike) -> dict:
    """Open every scene still to do in ``out`` (its header only), before anything is written;
    returns ``{scene: VideoInfo}`` for them (a scene's run then does not probe it again).

    Raises
    ------
    InputError
        A source is not a video or frame folder that can be read: the run fails before the
        scenes ahead of it are written, not after.
    """
    return {
        src.scene: probe(src.path)
        for src in scenes.sources
        if not layout.tl_scene_result(out, src.scene).is_file()
    }


def _build_scene(scene: str, source: Path, out: Path, writer, options: PairsOptions, info=None) -> SceneResult:
    info = info or probe(source)
    scores, segments, rejections, factor, thumbs = analysis_pass(
        source, config=options.static, min_length=options.n_frames, expected=info.frame_count
    )
    stabs: dict = {}
    if options.static.stabilize and segments:
        segments, rejections, stabs = _stabilize_segments(source, info.kind, segments, rejections, scores, options)
    result = SceneResult(scene, str(source), len(scores), info.fps, segments, rejections)
    logger.info("%s: %d frames, %d segment(s) kept", scene, len(scores), len(segments))
    stats = layout.tl_stats(scene)
    write_stats_csv(out / stats, scores, fps=info.fps, status=_status(len(scores), result))
    result.stats = stats
    chosen = {
        result.segment_id(i): choose_frames(
            s, options.n_frames, select=options.select, scores=scores
        )
        for i, s in enumerate(segments)
    }
    result.frames = chosen
    stabs = {result.segment_id(i): st for i, st in stabs.items()}
    for sid, frames in _segment_frames(source, info.kind, chosen):
        stab = stabs.get(sid)
        if stab is not None:  # the registered frames: pixel-aligned with each other
            frames = np.stack([warp(f, m, stab.crop) for f, m in zip(frames, stab.matrices)])
        masks = (
            foreground_masks(frames, factor=factor, level=options.static.foreground_level)
            if options.masks
            else None
        )
        clean = _pseudo_gt(frames) if options.pseudo_gt else None
        result.pairs[sid] = _write_segment(
            writer, scene, sid, chosen[sid], frames, masks, clean, options, stab=stab
        )
        k = int(sid.rsplit("/s", 1)[1])
        sheet = layout.tl_sheet(scene, k)
        img = contact_sheet(scores, result, options.static, segment=k, frames=frames, masks=masks)
        write_image(out / sheet, img)
        result.sheets.append(sheet)
    if not segments:
        sheet = layout.tl_sheet(scene)
        write_image(
            out / sheet, contact_sheet(scores, result, options.static, thumbs=thumbs.three())
        )
        result.sheets.append(sheet)
    return result


def _stabilize_segments(source, kind, segments, rejections, scores, options: PairsOptions):
    """Register each segment's chosen frames (:func:`rainset.stabilize.stabilize`); a segment
    registration cannot fix becomes a "moving camera" rejection with the measured figures.

    Returns the kept segments, the rejections and ``{segment id: Stabilization}`` under the
    kept segments' ids. Decodes the chosen frames once more (the write pass warps them again
    with the stored transforms).
    """
    from rainset.stabilize import stabilize

    cfg = options.static
    picks = {
        str(i): choose_frames(s, options.n_frames, select=options.select, scores=scores)
        for i, s in enumerate(segments)
    }
    verdicts = {int(k): stabilize(frames, cfg.stabilize, cfg.policy)[0] for k, frames in _segment_frames(source, kind, picks)}
    kept, stabs, rejections = [], {}, list(rejections)
    for i, seg in enumerate(segments):
        st = verdicts[i]
        if st.ok:
            stabs[len(kept)] = st
            kept.append(seg)
        else:
            rejections.append(Rejection(seg.start, seg.stop, "moving camera", f"cannot be stabilised: {st.refused}"))
    rejections.sort(key=lambda r: r.start)
    return kept, rejections, stabs


def _segment_frames(
    source: Path, kind: str, chosen: dict[str, list[int]]
) -> Iterator[tuple[str, np.ndarray]]:
    """(segment id, (N, H, W, 3) frames) per segment, decoding once up to the last one."""
    if not chosen:
        return
    if kind == "folder":
        files = list_frame_files(source)
        for sid, idx in chosen.items():
            yield sid, np.stack(list(iter_frames([files[i] for i in idx])))
        return
    want = {i: sid for sid, idx in chosen.items() for i in idx}
    stop = max(want) + 1
    buf: dict[str, list[np.ndarray]] = {sid: [] for sid in chosen}
    for i, frame in enumerate(iter_frames(source, stop=stop)):
        sid = want.get(i)
        if sid is None:
            continue
        buf[sid].append(frame)
        if len(buf[sid]) == len(chosen[sid]):
            yield sid, np.stack(buf.pop(sid))
    if buf:
        raise InputError(f"{source}: ended before frame {stop - 1} on the second read.")


def _pseudo_gt(frames: np.ndarray) -> np.ndarray:
    from rainset.groundtruth import estimate_clean

    return estimate_clean(frames).image


def _write_segment(writer, scene, sid, indices, frames, masks, clean, options, stab=None) -> int:
    """Write a segment's frames (once), masks, clean image and pairs; returns the pair count.
    ``stab``: the segment's stabilisation, recorded per frame (transform) and per segment."""
    tag = sid.rsplit("/", 1)[1]
    clean_rel = writer.write_image(layout.tl_clean(scene, tag), clean) if clean is not None else None
    records = []  # added once every image of the segment is handed to the encoder
    for j, i in enumerate(indices):
        fid = f"{scene}/{i:06d}"
        if writer.has(fid):
            continue
        rec = {
            "id": fid,
            "scene": scene,
            "frame": writer.write_image(layout.tl_frame(scene, i), frames[j]),
            "index": i,
            "segment": sid,
        }
        if masks is not None:
            rec["mask"] = writer.write_image(layout.tl_mask(scene, i), masks[j])
        if clean_rel is not None:
            rec["clean"] = clean_rel
        if stab is not None:
            info = stab.record()
            rec["transform"] = info.pop("transforms")[j]
            rec["stabilize"] = info
        records.append(rec)
    for rec in records:  # each waits for its own images (the writer's encoder)
        writer.add(rec)
    pairs = _pairs(scene, sid, indices, options)
    writer.add_pairs([p for p in pairs if not writer.has_pair(p["id"])])
    return len(pairs)


def _pairs(scene: str, sid: str, indices: list[int], options: PairsOptions) -> list[dict]:
    """The pair records of a segment; the draw is seeded by (seed, crc32(segment id))."""
    ids = [f"{scene}/{i:06d}" for i in indices]
    rng = np.random.default_rng([options.seed, zlib.crc32(sid.encode())])
    return [
        {"id": f"{ids[m]}|{ids[n]}", "a": ids[m], "b": ids[n], "segment": sid}
        for m, n in sample_pairs(len(ids), k=options.pairs_per_segment, rng=rng)
    ]


def _complete(result: SceneResult, writer, options: PairsOptions) -> bool:
    """True when every frame and pair of a finished scene is in the dataset."""
    for sid, indices in result.frames.items():
        if not all(writer.has(f"{result.scene}/{i:06d}") for i in indices):
            return False
        if not all(writer.has_pair(p["id"]) for p in _pairs(result.scene, sid, indices, options)):
            return False
    return True


def require_frames(results: list[SceneResult], out: str | os.PathLike) -> None:
    """Raise :class:`EmptyResultError` when no scene kept a frame, saying why per scene."""
    if any(r.frames for r in results):
        return
    out = Path(out)
    why = "; ".join(
        f"{r.scene}: "
        + (", ".join(f"{x.start}-{x.stop - 1} {x.reason}" for x in r.rejections[:3]) or f"{r.n_frames} frames")
        for r in results[:3]
    )
    raise EmptyResultError(
        f"no static stretch long enough for `n_frames` was found ({why}), so the dataset {out} "
        f"holds no frame; {layout.report_path(out)} says why each stretch was rejected."
    )


# ----------------------------------------------------------------------------- sheets, report

_CURVES = (  # (field, label, threshold attribute)
    ("spread", "camera shift spread (px)", "max_shift"),
    ("cut", "cut score (1 - NCC)", "max_cut"),
    ("illumination", "|illumination change|", "max_illumination"),
    ("foreground", "foreground fraction", "max_foreground"),
)


def _plot(
    values: np.ndarray, limit: float, spans, width: int, height: int, label: str
) -> np.ndarray:
    """One score curve: kept spans green, rejected red, the threshold as a grey line."""
    img = np.full((height, width, 3), 255, np.uint8)
    n = len(values)
    peak = float(np.max(values)) if n else 0.0  # inf: a picture that changed beyond measuring
    finite = values[np.isfinite(values)]
    top = max(2 * limit, float(np.max(finite)) if len(finite) else 0.0) * 1.05
    values = np.where(np.isfinite(values), values, top)  # drawn at the top
    x = (np.arange(n) + 0.5) * width / max(n, 1)
    for a, b, colour in spans:
        cv2.rectangle(img, (int(a * width / n), 0), (int(b * width / n), height - 1), colour, -1)
    ty = int(height - 1 - limit / top * (height - 1))
    cv2.line(img, (0, ty), (width - 1, ty), (120, 120, 120), 1)
    y = height - 1 - np.clip(values / top, 0, 1) * (height - 1)
    pts = np.stack([x, y], axis=1).round().astype(np.int32)
    cv2.polylines(img, [pts], False, (20, 20, 160), 1, cv2.LINE_AA)
    text = f"{label}: max {peak:.3g}, threshold {limit:g}"
    return sheets.label(img, text, scale=0.4, colour=sheets.BLACK, at=(4, 14))


def _axis(n: int, width: int) -> np.ndarray:
    """Frame numbers under the curves: about ten ticks."""
    img = np.full((18, width, 3), 255, np.uint8)
    step = max(1, 10 ** math.floor(math.log10(max(n, 1) / 5)))
    step *= 5 if n / step > 25 else (2 if n / step > 10 else 1)
    for i in range(0, n, step):
        x = int((i + 0.5) * width / n)
        cv2.line(img, (x, 0), (x, 4), (0, 0, 0), 1)
        img = sheets.label(img, str(i), scale=0.35, colour=sheets.BLACK,
                           at=(min(x + 2, width - 30), 14))
    return img


def contact_sheet(
    scores: list[FrameScore],
    result: SceneResult,
    config: StaticConfig,
    *,
    segment: int | None = None,
    frames: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    thumbs: list[tuple[int, np.ndarray]] | None = None,
    width: int = 960,
) -> np.ndarray:
    """A review image: three frames above the score curves of the whole scene.

    For a kept segment the frames are its first, middle and last chosen frames with their
    foreground masks tinted red, and the segment is shaded dark green on the curves (other
    kept segments light green, rejected stretches light red). Without ``segment``, ``thumbs``
    (index, image) are shown instead.

    Returns
    -------
    sheet : (H, width, 3) uint8 RGB ndarray
    """
    tiles, labels = [], []
    if segment is not None and frames is not None:
        idx = result.frames[result.segment_id(segment)]
        for j in (0, len(idx) // 2, len(idx) - 1):
            f = frames[j].copy()
            if masks is not None:
                f[masks[j]] = (0.5 * f[masks[j]] + (127, 0, 0)).astype(np.uint8)
            share = f" fg {100 * masks[j].mean():.0f}%" if masks is not None else ""
            tiles.append(f)
            labels.append(f"frame {idx[j]}{share}")
    else:
        for i, t in thumbs or []:
            tiles.append(t)
            labels.append(f"frame {i}")
    row = [
        sheets.label(sheets.fit_width(t, width // 3, upscale=True), lab, scale=0.45,
                     colour=(255, 255, 0), at=(4, 16))
        for t, lab in zip(tiles, labels)
    ]
    spans = [(r.start, r.stop, (255, 215, 215)) for r in result.rejections]
    spans += [
        (s.start, s.stop, (200, 240, 200) if i != segment else (120, 210, 120))
        for i, s in enumerate(result.segments)
    ]
    plots = []
    for name, label, attr in _CURVES:
        v = np.array([abs(getattr(s, name)) for s in scores], np.float64)
        plots.append(_plot(v, getattr(config, attr), spans, width, 70, label))
    plots.append(_axis(len(scores), width))
    if segment is not None:
        s = result.segments[segment]
        title = f"{result.segment_id(segment)}: frames {s.start}-{s.stop - 1} ({s.length}), begins at {s.begins}, ends at {s.ends}"
    else:
        title = f"{result.scene}: no static segment of {len(scores)} frames kept"
    parts = [sheets.band(title, width)] + ([sheets.hstack(row)] if row else []) + plots
    return sheets.vstack(parts, width=width)


def write_report(
    out: str | os.PathLike,
    results: Iterable[SceneResult],
    options: PairsOptions,
    input_path: str = "",
) -> Path:
    """Write ``report.md``: a table per scene, then each scene's segments and rejections."""
    out = Path(out)
    results = list(results)
    cfg = options.static
    per = (
        "all C(N, 2)"
        if options.pairs_per_segment is None
        else f"{options.pairs_per_segment} sampled (seed {options.seed})"
    )
    lines = [
        "# rainset pairs report",
        "",
        f"Input `{input_path}`: {len(results)} scenes. N = {options.n_frames} frames per segment "
        f"({options.select} choice), pairs per segment: {per}.",
        f"Static means: camera shift spread <= {cfg.max_shift:g} px, cut score <= {cfg.max_cut:g}, "
        f"illumination change <= {100 * cfg.max_illumination:g} %, foreground <= "
        f"{100 * cfg.max_foreground:g} % of the frame (difference > {cfg.foreground_level} levels).",
        "",
        "| scene | frames | kept segments | rejected stretches | frames written | pairs |",
        "|---|---:|---|---|---:|---:|",
    ]
    for r in results:
        kept = (
            "; ".join(f"s{i:02d}: {s.start}-{s.stop - 1}" for i, s in enumerate(r.segments))
            or "none"
        )
        rej = "; ".join(f"{x.start}-{x.stop - 1}: {x.reason}" for x in r.rejections) or "none"
        nf = sum(len(v) for v in r.frames.values())
        lines.append(
            f"| {r.scene} | {r.n_frames} | {kept} | {rej} | {nf} | {sum(r.pairs.values())} |"
        )
    total_pairs = sum(sum(r.pairs.values()) for r in results)
    total_segs = sum(len(r.segments) for r in results)
    lines += ["", f"Total: {total_segs} segments, {total_pairs} pairs.", ""]
    for r in results:
        lines += [
            f"## {r.scene}",
            "",
            f"Source `{r.source}`, {r.n_frames} frames"
            + (f" at {r.fps:g} fps" if r.fps else "")
            + f"; scores in `{r.stats}`.",
            "",
        ]
        for i, s in enumerate(r.segments):
            sid = r.segment_id(i)
            lines.append(
                f"- kept {sid}: frames {s.start}-{s.stop - 1} ({s.length}), begins at {s.begins}, "
                f"ends at {s.ends}; {len(r.frames.get(sid, []))} frames, {r.pairs.get(sid, 0)} pairs"
            )
        for x in r.rejections:
            lines.append(
                f"- rejected {x.start}-{x.stop - 1} ({x.stop - x.start} frames): **{x.reason}** ({x.detail})"
            )
        lines += [""] + [f"![{Path(s).stem}]({s})" for s in r.sheets] + [""]
    path = layout.report_path(out)
    atomic_write_text(path, "\n".join(lines))
    return path
