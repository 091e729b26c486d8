"""Score derained images against a dataset's clean images: any model's, no torch.

:func:`evaluate_outputs` reads a folder of outputs named by sample id (``DIR/<id>.png``, the
id's ``/`` as sub-folders: the layout ``rainset validate --save-outputs`` writes) or a mapping
file, and scores each against the sample's clean image, next to the do-nothing baseline (the
rainy input scored as if it were the output), per scene and overall.

Conventions (shared with :mod:`rainset.train.report`, which scores ``validate``'s model the
same way; see :data:`CONVENTIONS`): uint8 output against uint8 clean, whole image or its
centre crop; ``psnr_rgb``/``ssim_rgb`` over the three RGB channels, data range 255;
``psnr_y``/``ssim_y`` on BT.601 studio-range Y, unrounded (BasicSR's ``test_y_channel``);
SSIM with an 11x11 Gaussian window, sigma 1.5, valid region (:mod:`rainset.metrics`). 16-bit
outputs are brought to 8 bits by :func:`rainset.image.to_uint8`. PSNR of identical images is
capped at :data:`PSNR_CAP` dB so means stay finite.

Which samples are scored (:func:`eval_items`, :func:`pick_evenly`): a split's samples with a
rainy and a clean image (the frames of a time-lapse dataset that carry pseudo ground truth),
optionally at most ``eval_max`` per scene, chosen evenly spaced in manifest order.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rainset import metrics
from rainset.errors import InputError, ParameterError
from rainset.pipelines._common import Event as _PipelineEvent

__all__ = [
    "PSNR_CAP",
    "METRICS",
    "CONVENTIONS",
    "Event",
    "EvalItem",
    "ImageScore",
    "EvaluationResult",
    "score",
    "summarize",
    "eval_items",
    "pick_evenly",
    "centre_crop",
    "output_path",
    "evaluate_outputs",
]

#: PSNR (dB) reported for identical images.
PSNR_CAP = 100.0
METRICS = ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")
CONVENTIONS = (
    "uint8 output (rounded, clipped) vs uint8 clean, whole image; RGB: all channels, data "
    "range 255; Y: BT.601 studio range (16-235), unrounded (BasicSR test_y_channel); SSIM: "
    "11x11 Gaussian window, sigma 1.5, valid region (rainset.metrics); PSNR of identical "
    f"images capped at {PSNR_CAP:g} dB"
)

#: The suffix of an output file in the ``DIR/<id>.png`` layout.
OUTPUT_SUFFIX = ".png"


@dataclass(frozen=True)
class Event(_PipelineEvent):
    """A progress event of :func:`evaluate_outputs`, :func:`rainset.train.validate` and
    :func:`rainset.train.derain_files`: the pipelines' :class:`rainset.pipelines._common.Event`
    (``pipeline`` ``"evaluate"``, ``"validate"`` or ``"derain"``) plus ``info``.

    Kinds besides ``start``, ``note`` and ``done``:

    - ``"step"`` (validate): training step ``done`` of ``total``; ``info`` has ``loss`` and
      ``images_per_s``.
    - ``"scored"``: image ``done`` of ``total`` of the evaluation ``scene`` (its title) is
      scored; ``message`` is the sample id.
    - ``"tile"`` (derain): tile ``done`` of ``total`` of the image ``scene``.
    - ``"frame"`` (derain): frame ``done`` of ``total`` (None when not known) of the video
      ``scene`` is derained.
    - ``"written"`` (derain): the output of input ``scene`` is written, ``done`` of ``total``
      output files.
    """

    info: dict = field(default_factory=dict)


ProgressFn = Callable[[Event], None]


def _emitter(pipeline: str, progress: ProgressFn | None) -> Callable[..., None]:
    """``emit(kind, scene="", **fields)``: ``progress`` (if any) called with an :class:`Event`
    of ``pipeline``."""

    def emit(kind: str, scene: str = "", **kw) -> None:
        if progress is not None:
            progress(Event(pipeline, kind, scene, **kw))

    return emit


# ----------------------------------------------------------------------------- scores


@dataclass(frozen=True)
class EvalItem:
    """A sample to score; paths relative to the dataset root."""

    id: str
    scene: str
    rainy: str
    clean: str


@dataclass
class ImageScore:
    """Metrics of one image for the model and the identity baseline."""

    id: str
    scene: str
    model: dict[str, float]
    baseline: dict[str, float]
    example: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {"id": self.id, "scene": self.scene, "model": self.model, "baseline": self.baseline}


def score(output: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """PSNR/SSIM on RGB and Y of a uint8 output against the uint8 clean image."""

    def cap(v: float) -> float:
        return min(v, PSNR_CAP)

    return {
        "psnr_rgb": cap(metrics.psnr(output, clean)),
        "ssim_rgb": metrics.ssim(output, clean),
        "psnr_y": cap(metrics.psnr(output, clean, channel="y")),
        "ssim_y": metrics.ssim(output, clean, channel="y"),
    }


def _mean(scores: list[ImageScore], who: str) -> dict[str, float]:
    return {k: float(np.mean([getattr(s, who)[k] for s in scores])) for k in METRICS}


def summarize(scores: Iterable[ImageScore]) -> dict:
    """Means over all images and per scene, for the model, the baseline and their difference.

    Returns
    -------
    summary : dict
        ``{"images", "model", "baseline", "gain", "per_scene": {scene: {"images", "model",
        "baseline", "gain"}}}``; ``gain`` is model minus baseline, metric by metric.
    """
    scores = list(scores)
    if not scores:
        raise ValueError("no scores to summarize")

    def block(group: list[ImageScore]) -> dict:
        m, b = _mean(group, "model"), _mean(group, "baseline")
        return {
            "images": len(group),
            "model": m,
            "baseline": b,
            "gain": {k: m[k] - b[k] for k in METRICS},
        }

    by_scene: dict[str, list[ImageScore]] = defaultdict(list)
    for s in scores:
        by_scene[s.scene].append(s)
    out = block(scores)
    out["per_scene"] = {scene: block(g) for scene, g in sorted(by_scene.items())}
    return out


# ----------------------------------------------------------------------------- which samples


def eval_items(dataset, *, split: str | None) -> list[EvalItem]:
    """The samples of one split (None: all) that have a rainy and a clean image.

    Paired datasets: every sample. Time-lapse datasets: the frames with pseudo ground truth.

    Raises
    ------
    InputError
        A dataset of clean images only, or a time-lapse dataset without pseudo ground truth.
    """
    if dataset.kind == "clean":
        raise InputError(
            f"{dataset.root}: this dataset holds clean images only, no rainy images to "
            "evaluate on."
        )
    key = "rainy" if dataset.kind == "paired" else "frame"
    out, seen = [], 0
    for rec in dataset.samples(split=split):
        seen += 1
        if isinstance(rec.get(key), str) and isinstance(rec.get("clean"), str):
            out.append(EvalItem(rec["id"], rec["scene"], rec[key], rec["clean"]))
    if seen and not out:
        raise InputError(
            f"{dataset.root}: no sample has a clean image (a time-lapse dataset needs pseudo "
            "ground truth); there is nothing to score against."
        )
    return out


def _check_count(name: str, value, least: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ParameterError(name, f"must be a whole number >= {least}, got {value!r}")


def pick_evenly(items: list, eval_max: int | None) -> list:
    """At most ``eval_max`` items per scene, evenly spaced in their order (None: all).

    Of a scene's ``n`` items, ``k = min(n, eval_max)`` are kept: those at positions
    ``floor((i + 1/2) n / k)``, i = 0 .. k-1 (the middles of k equal runs). The result keeps
    the input order.
    """
    _check_count("eval_max", eval_max, 1)
    if eval_max is None:
        return list(items)
    by_scene: dict[str, list[int]] = defaultdict(list)
    for index, it in enumerate(items):
        by_scene[it.scene].append(index)
    keep: set[int] = set()
    for positions in by_scene.values():
        n = len(positions)
        k = min(n, eval_max)
        keep.update(positions[((2 * i + 1) * n) // (2 * k)] for i in range(k))
    return [it for index, it in enumerate(items) if index in keep]


def centre_crop(image: np.ndarray, size: int | None) -> np.ndarray:
    """The centre ``size x size`` crop (each side at most the image's); None: the image."""
    if size is None:
        return image
    h, w = image.shape[:2]
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return image[y : y + ch, x : x + cw]


# ----------------------------------------------------------------------------- outputs


def output_path(outputs: str | os.PathLike, sample_id: str) -> Path:
    """Where a sample's output lies in the ``DIR/<id>.png`` layout (``/`` in ids: sub-folders)."""
    parts = sample_id.split("/")
    return Path(outputs, *parts[:-1], parts[-1] + OUTPUT_SUFFIX)


def _read_mapping(path: Path) -> dict[str, Path]:
    """A mapping file: a JSON object ``{id: file}`` or CSV/TSV rows ``id,file`` (an optional
    ``id,...`` header); files relative to the mapping file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the mapping file ({exc}).") from None
    base = path.parent
    rows: list[tuple[str, str]] = []
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{path}: not valid JSON ({exc}).") from None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise InputError(f"{path}: the JSON mapping must map sample ids to file names.")
        rows = list(data.items())
    else:
        first = text.splitlines()[0] if text.strip() else ""
        dialect = "excel-tab" if "\t" in first else "excel"
        for n, row in enumerate(csv.reader(text.splitlines(), dialect=dialect), start=1):
            if not row or not "".join(row).strip():
                continue
            if n == 1 and row[0].strip().lower() == "id":
                continue
            if len(row) < 2:
                raise InputError(f"{path}:{n}: want 'id,file', got {','.join(row)!r}.")
            rows.append((row[0].strip(), row[1].strip()))
    if not rows:
        raise InputError(f"{path}: the mapping file names no outputs.")
    return {sid: (base / f) for sid, f in rows}


@dataclass
class EvaluationResult:
    """What :func:`evaluate_outputs` found.

    Attributes
    ----------
    summary : :func:`summarize` of the scores (model = the outputs).
    scores : per-image scores, in manifest order.
    split : the split scored (None: all samples, when the dataset has no such split).
    missing : ids of the split's samples without an output (not scored).
    seconds : wall time of the scoring.
    """

    summary: dict
    scores: list[ImageScore]
    split: str | None
    missing: list[str]
    seconds: float

    def to_json(self) -> dict:
        return {
            "split": self.split,
            "conventions": CONVENTIONS,
            "summary": self.summary,
            "missing": self.missing,
            "seconds": round(self.seconds, 2),
            "images": [s.to_json() for s in self.scores],
        }


def evaluate_outputs(
    dataset,
    outputs: str | os.PathLike,
    *,
    split: str | None = "test",
    eval_crop: int | None = None,
    progress: ProgressFn | None = None,
) -> EvaluationResult:
    """Score a model's outputs against a dataset's clean images.

    Parameters
    ----------
    dataset : a :class:`rainset.dataset.Dataset` or its folder.
    outputs : a folder in the ``DIR/<id>.png`` layout (:func:`output_path`), or a mapping file
        (JSON ``{id: file}``, or CSV rows ``id,file``; files relative to it).
    split : ``"test"``, ``"train"``, ``"val"`` or None (all samples). A dataset without a
        sample in that split is scored on all of its samples.
    eval_crop : score the centre ``eval_crop`` square of the clean and rainy images; an
        output of the full size is cropped the same way, one of the crop's size is taken as
        it is.
    progress : called with an :class:`Event` (kind ``"scored"``) after each image.

    Returns
    -------
    EvaluationResult
        Samples without an output are listed in ``missing`` and not scored.

    Raises
    ------
    InputError
        No output for any sample; an output that is unreadable or of the wrong size; an
        output the mapping names that does not exist.
    ParameterError
        ``eval_crop`` below 16; an unknown ``split``.
    """
    from rainset.dataset import open_dataset

    _check_count("eval_crop", eval_crop, 16)
    if split not in (None, "train", "val", "test"):
        raise ParameterError("split", f"must be train, val, test or None, got {split!r}")
    ds = dataset if hasattr(dataset, "samples") else open_dataset(dataset)
    emit = _emitter("evaluate", progress)
    t0 = time.perf_counter()
    chosen = eval_items(ds, split=split)
    if not chosen and split is not None:
        split = None
        chosen = eval_items(ds, split=None)
        emit("note", message=f"{ds.root}: no test split; scoring every sample")
    outputs = Path(outputs)
    if outputs.is_file():
        mapping = _read_mapping(outputs)
        known = {it.id for it in chosen}
        for sid, p in mapping.items():
            if sid in known and not p.is_file():
                raise InputError(f"{outputs}: the output of {sid!r}, {p}, does not exist.")
        where = {it.id: mapping.get(it.id) for it in chosen}
    elif outputs.is_dir():
        where = {it.id: output_path(outputs, it.id) for it in chosen}
        where = {k: (p if p.is_file() else None) for k, p in where.items()}
    else:
        raise InputError(f"{outputs}: no such folder or mapping file.")
    todo = [it for it in chosen if where.get(it.id) is not None]
    missing = [it.id for it in chosen if where.get(it.id) is None]
    if not todo:
        raise InputError(
            f"{outputs}: no output for any of the {len(chosen)} samples scored (want "
            f"<id>{OUTPUT_SUFFIX} files, e.g. {output_path(outputs, chosen[0].id) if chosen else '?'})."
        )
    from rainset.image import read_image, to_uint8

    emit("start", str(ds.root), total=len(todo))
    scores = []
    for n, it in enumerate(todo, start=1):
        clean = to_uint8(ds.load({"id": it.id, "clean": it.clean}, "clean"))
        rainy = to_uint8(ds.load({"id": it.id, "rainy": it.rainy}, "rainy"))
        full = clean.shape[:2]
        clean, rainy = centre_crop(clean, eval_crop), centre_crop(rainy, eval_crop)
        path = where[it.id]
        out = to_uint8(read_image(path))
        if eval_crop is not None and out.shape[:2] == full and full != clean.shape[:2]:
            out = centre_crop(out, eval_crop)
        if out.shape[:2] != clean.shape[:2]:
            raise InputError(
                f"{path}: the output is {out.shape[1]}x{out.shape[0]}, the image scored "
                f"{clean.shape[1]}x{clean.shape[0]}; outputs must have the size of the image "
                "scored (the clean image, or its centre crop with `eval_crop`)."
            )
        scores.append(ImageScore(it.id, it.scene, score(out, clean), score(rainy, clean)))
        emit("scored", str(ds.root), message=it.id, done=n, total=len(todo))
    emit("done", str(ds.root), done=len(scores), total=len(todo))
    return EvaluationResult(summarize(scores), scores, split, missing, time.perf_counter() - t0)
