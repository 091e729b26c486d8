"""Evaluate a derainer on a dataset split next to the do-nothing baseline; write the report.

Metrics (:mod:`rainset.metrics`, conventions in :mod:`rainset.evaluate`, which scores other
models' outputs the same way without torch), on the uint8 output (rounded, clipped) against
the uint8 clean image, whole image (no border crop) or its centre crop (``eval_crop``):

- ``psnr_rgb``, ``ssim_rgb``: over the three RGB channels, data range 255;
- ``psnr_y``, ``ssim_y``: on BT.601 studio-range Y, unrounded (BasicSR's ``test_y_channel``),
  data range 255;
- SSIM: 11x11 Gaussian window, sigma 1.5, valid region. Published SPA-Data / GT-Rain numbers
  used other conventions (data range 2 on float images), so compare with care.

The *baseline* is the identity: the rainy input scored as if it were the output. PSNR of
identical images (infinite) is capped at :data:`PSNR_CAP` dB so means stay finite.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rainset import sheets
from rainset.dataset import Dataset
from rainset.fsutil import atomic_path, atomic_write_text
from rainset.image import write_image

__all__ = [
    "PSNR_CAP",
    "METRICS",
    "ImageScore",
    "score",
    "evaluate",
    "count_items",
    "summarize",
    "loss_trend",
    "plot_curves",
    "example_grid",
    "labelled_grid",
    "write_report",
]

# Shared with `rainset evaluate` (no torch): the scores and their conventions.
from rainset.evaluate import (
    CONVENTIONS,
    METRICS,
    PSNR_CAP,
    ImageScore,
    _check_count,
    centre_crop,
    eval_items,
    output_path,
    pick_evenly,
    score,
    summarize,
)

logger = logging.getLogger(__name__)


def _pick_examples(item_list: list, n: int) -> set[str]:
    """Up to ``n`` ids spread over scenes: each scene's first image, round-robin."""
    by_scene: dict[str, list[str]] = defaultdict(list)
    for it in item_list:
        by_scene[it.scene].append(it.id)
    chosen: list[str] = []
    depth = 0
    while len(chosen) < n and any(len(v) > depth for v in by_scene.values()):
        for ids in by_scene.values():
            if len(ids) > depth and len(chosen) < n:
                chosen.append(ids[depth])
        depth += 1
    return set(chosen)


def evaluate(
    derain,
    dataset: Dataset,
    *,
    split: str | None = "test",
    examples: int = 4,
    eval_max: int | None = None,
    eval_crop: int | None = None,
    save_outputs: str | Path | None = None,
) -> Iterator[ImageScore]:
    """Score a derainer on the images of a split, next to the identity baseline.

    Parameters
    ----------
    derain : callable (H, W, 3) uint8 -> (H, W, 3) uint8
        The derainer, e.g. ``functools.partial(derain_image, model)``.
    dataset : the dataset to evaluate on.
    split : ``"test"``, ``"train"``, ``"val"`` or None (every sample).
    examples : how many images (spread over scenes) carry their (rainy, output, clean) in
        :attr:`ImageScore.example`.
    eval_max : at most this many images per scene, evenly spaced
        (:func:`rainset.evaluate.pick_evenly`); None: all.
    eval_crop : derain and score the centre ``eval_crop`` square of each image
        (:func:`rainset.evaluate.centre_crop`); None: whole images.
    save_outputs : a folder to write each output to, as ``<id>.png``
        (:func:`rainset.evaluate.output_path`), for ``rainset evaluate``.

    Yields
    ------
    score : ImageScore, one per image, in manifest order.
    """
    from rainset.errors import ParameterError
    from rainset.image import to_uint8

    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 0:
        raise ParameterError("examples", f"must be a whole number >= 0, got {examples!r}")
    _check_count("eval_crop", eval_crop, 16)
    item_list = pick_evenly(eval_items(dataset, split=split), eval_max)
    keep = _pick_examples(item_list, examples)
    for it in item_list:
        rainy = to_uint8(dataset.load({"id": it.id, "rainy": it.rainy}, "rainy"))
        clean = to_uint8(dataset.load({"id": it.id, "clean": it.clean}, "clean"))
        rainy = np.ascontiguousarray(centre_crop(rainy, eval_crop))
        clean = np.ascontiguousarray(centre_crop(clean, eval_crop))
        out = derain(rainy)
        if save_outputs is not None:
            write_image(output_path(save_outputs, it.id), out)
        yield ImageScore(
            it.id,
            it.scene,
            score(out, clean),
            score(rainy, clean),
            (rainy, out, clean) if it.id in keep else None,
        )


def count_items(
    dataset: Dataset, *, split: str | None = "test", eval_max: int | None = None
) -> int:
    """How many images :func:`evaluate` scores with these arguments."""
    return len(pick_evenly(eval_items(dataset, split=split), eval_max))


def plot_curves(log: list[dict], path: str | Path) -> None:
    """Loss curves (total and the three terms, with a running mean) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["step"] for r in log])
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key, label in (
        ("loss", "total"),
        ("l1", "L1"),
        ("ssim", "1 - SSIM"),
        ("att", "attention MSE"),
        ("dir", "rain direction"),
        ("lb", "L_b"),
        ("ls", "L_s"),
        ("lv", "L_v"),
        ("lm", "L_m (rain model)"),
    ):
        if not all(isinstance(r.get(key), (int, float)) for r in log):
            continue
        v = np.array([r[key] for r in log], dtype=float)
        k = max(1, len(v) // 50)
        smooth = np.convolve(v, np.ones(k) / k, mode="valid")
        (line,) = ax.plot(steps, v, alpha=0.2, lw=0.8)
        ax.plot(steps[k - 1 :], smooth, color=line.get_color(), lw=1.5, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def example_grid(examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]], *, width: int = 320):
    """Rows of (rainy | output | clean), each panel resized to ``width`` pixels wide.

    Returns
    -------
    grid : (H, 3 * width + 8, 3) uint8 ndarray, white 4-pixel gutters.
    """
    rows = [[sheets.fit_width(p, width, upscale=True) for p in triple] for triple in examples]
    return sheets.grid(rows, gutter=4, fill=255)


#: The smoothed loss may still fall by at most this share over the last ``TAIL`` of the steps
#: for a run to count as long enough to judge.
STILL_FALLING = 0.05
TAIL = 0.2


def loss_trend(log: list[dict], key: str = "loss") -> dict:
    """Whether a run was long enough to judge its dataset by.

    The loss smoothed by a running mean over a tenth of the steps is compared at the start of
    the last :data:`TAIL` (20 %) of the steps and at the end: when it still fell by more than
    :data:`STILL_FALLING` (5 %), the model was still learning and "does not beat the baseline"
    says nothing about the data. Runs of fewer than 10 logged steps are too short as well.

    Returns
    -------
    trend : dict
        ``{"steps", "window", "before", "after", "fell", "too_short"}``; ``fell`` is the
        relative drop ``(before - after) / before`` (None under 10 steps).
    """
    v = np.array([float(r[key]) for r in log if r.get(key) is not None], dtype=float)
    n = len(v)
    if n < 10:
        return {"steps": n, "window": None, "before": None, "after": None, "fell": None,
                "too_short": True}  # fmt: skip
    w = max(1, n // 10)
    start = n - max(1, round(TAIL * n))
    before = float(np.mean(v[max(0, start - w) : start]))
    after = float(np.mean(v[n - w :]))
    fell = (before - after) / before if before > 0 else 0.0
    return {"steps": n, "window": w, "before": before, "after": after, "fell": fell,
            "too_short": bool(fell > STILL_FALLING)}  # fmt: skip


def too_short_note(trend: dict) -> str:
    """One sentence about :func:`loss_trend`'s verdict ("" when the run was long enough)."""
    if not trend.get("too_short"):
        return ""
    if trend.get("fell") is None:
        return (
            f"Too short to judge: {trend['steps']} logged steps are too few to tell whether "
            "the loss has settled; train longer before judging the dataset."
        )
    return (
        f"Too short to judge: the smoothed loss still fell by {100 * trend['fell']:.1f} % "
        f"over the last {100 * TAIL:.0f} % of the steps (more than {100 * STILL_FALLING:.0f} "
        "%), so the model was still learning; train longer (more `iters`) before judging "
        "the dataset by these numbers."
    )


def labelled_grid(scores: list[ImageScore], *, width: int = 320, model: str = "SPANet"):
    """The report's example grid: per image one row of captioned panels, rainy | output |
    clean (each with its PSNR against the clean image), and below it the same three crops
    zoomed on the region where rainy and clean differ most (``|rainy - clean|``: rain, or
    whatever else the clean image lacks, such as a passing car).

    Returns
    -------
    grid : (H, W, 3) uint8 ndarray, white 4-pixel gutters.
    """
    rows = []
    for s in scores:
        rainy, out, clean = s.example
        names = (f"rainy  {s.baseline['psnr_rgb']:.2f} dB", f"{model}  {s.model['psnr_rgb']:.2f} dB",
                 f"clean  ({s.id})")  # fmt: skip
        panels = [sheets.fit_width(p, width, upscale=True) for p in (rainy, out, clean)]
        rows.append([sheets.captioned(p, n) for p, n in zip(panels, names)])
        diff = np.abs(rainy.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
        y, x, h, w = sheets.busiest_box(diff, fraction=4)
        k = sheets.zoom_for(width, w)
        crops = [sheets.fit_width(sheets.magnify(p[y : y + h, x : x + w], k), width, upscale=True)
                 for p in (rainy, out, clean)]  # fmt: skip
        zoom = f"zoom x{k} at ({x}, {y})"
        rows.append([sheets.captioned(c, f"{zoom}: {n.split()[0]}") for c, n in zip(crops, names)])
    return sheets.grid(rows, gutter=4, fill=255)


def _fmt_row(name: str, m: dict[str, float]) -> str:
    return (
        f"| {name} | {m['psnr_rgb']:.2f} | {m['ssim_rgb']:.4f} | {m['psnr_y']:.2f} | "
        f"{m['ssim_y']:.4f} |"
    )


def _gain_row(g: dict[str, float]) -> str:
    return (
        f"| gain | {g['psnr_rgb']:+.2f} | {g['ssim_rgb']:+.4f} | {g['psnr_y']:+.2f} | "
        f"{g['ssim_y']:+.4f} |"
    )


def _section(
    title: str, summary: dict, images_rel: str | None, *, seconds: float | None = None,
    too_short: bool = False,
) -> list[str]:
    head = "| | PSNR RGB (dB) | SSIM RGB | PSNR Y (dB) | SSIM Y |\n|---|---|---|---|---|"
    g = summary["gain"]
    verdict = "beats" if g["psnr_rgb"] > 0 and g["ssim_rgb"] > 0 else "does NOT beat"
    caveat = " (but the run was too short to judge, see above)" if too_short else ""
    timing = ""
    if seconds is not None:
        timing = (
            f" Evaluated in {seconds:.1f} s ({seconds / max(1, summary['images']):.2f} s per "
            "image)."
        )
    lines = [
        f"## {title}",
        "",
        f"{summary['images']} images. SPANet {verdict} the do-nothing baseline "
        f"({g['psnr_rgb']:+.2f} dB PSNR, {g['ssim_rgb']:+.4f} SSIM on RGB){caveat}.{timing}",
        "",
        head,
        _fmt_row("SPANet", summary["model"]),
        _fmt_row("identity (rainy input)", summary["baseline"]),
        _gain_row(g),
        "",
        "Per scene (PSNR RGB / SSIM RGB):",
        "",
        "| scene | images | SPANet | identity | gain |",
        "|---|---|---|---|---|",
    ]
    for scene, s in summary["per_scene"].items():
        m, b, d = s["model"], s["baseline"], s["gain"]
        lines.append(
            f"| {scene} | {s['images']} | {m['psnr_rgb']:.2f} / {m['ssim_rgb']:.4f} | "
            f"{b['psnr_rgb']:.2f} / {b['ssim_rgb']:.4f} | "
            f"{d['psnr_rgb']:+.2f} / {d['ssim_rgb']:+.4f} |"
        )
    if images_rel:
        lines += [
            "",
            f"![rainy | SPANet | clean, PSNR against the clean image; below each, the three "
            f"zoomed where rainy and clean differ most]({images_rel})",
            "",
        ]
    return lines + [""]


def write_report(
    run_dir: str | Path,
    *,
    info: dict,
    evaluations: dict[str, tuple[dict, list[ImageScore]]],
    log: list[dict],
    eval_seconds: dict[str, float] | None = None,
) -> dict:
    """Write ``report.json``, ``report.md``, ``loss.png`` and ``examples-<name>.png``.

    Parameters
    ----------
    run_dir : the run folder.
    info : run facts for the header: ``dataset``, ``config``, ``device``, ``parameters``,
        ``train_images``, ``train_seconds``, ``mask_threshold``, ... (JSON-serialisable).
    evaluations : name (e.g. ``"test"`` or another dataset's path) -> (summary from
        :func:`summarize`, the per-image scores).
    log : the training log records (for the curves and :func:`loss_trend`).
    eval_seconds : name -> wall time of that evaluation, shown in its section.

    Returns
    -------
    report : dict, what ``report.json`` holds.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    eval_seconds = eval_seconds or {}
    trend = loss_trend(log)
    report = {"info": info, "conventions": CONVENTIONS, "trend": trend, "evaluations": {}}
    sampling = ""
    if info.get("eval_max") or info.get("eval_crop"):
        parts = []
        if info.get("eval_max"):
            parts.append(f"at most {info['eval_max']} images per scene, evenly spaced")
        if info.get("eval_crop"):
            parts.append(f"centre {info['eval_crop']}x{info['eval_crop']} crops")
        sampling = f"- evaluation: {', '.join(parts)}"
    total_eval = sum(eval_seconds.values())
    md = [
        "# rainset validate: SPANet",
        "",
        f"- dataset: `{info.get('dataset')}`",
        f"- device: {info.get('device')}; parameters: {info.get('parameters')}",
        f"- training: {info.get('steps')} steps, {info.get('train_images')} train images, "
        f"{info.get('train_seconds', 0):.0f} s; preset `{info.get('config', {}).get('preset')}`",
        f"- rain mask: threshold {info.get('mask_threshold')} levels for samples without a "
        "stored mask",
        f"- metrics: {CONVENTIONS}",
        *([sampling] if sampling else []),
        *([f"- evaluation time: {total_eval:.1f} s"] if eval_seconds else []),
        "",
    ]
    note = too_short_note(trend)
    if note:
        md += [f"**{note}**", ""]
    if log:
        plot_curves(log, run_dir / "loss.png")
        last = log[-max(1, len(log) // 20) :]
        md += [
            "![loss curves](loss.png)",
            "",
            f"Final loss (mean of the last {len(last)} steps): "
            f"{np.mean([r['loss'] for r in last]):.4f}.",
            "",
        ]
    for k, (name, (summary, scores)) in enumerate(evaluations.items()):
        rel = None
        ex = [s for s in scores if s.example is not None]
        if ex:
            rel = f"examples-{k}.png"
            write_image(run_dir / rel, labelled_grid(ex))
        report["evaluations"][name] = {
            "summary": summary,
            "seconds": round(eval_seconds[name], 2) if name in eval_seconds else None,
            "images": [s.to_json() for s in scores],
            "examples": rel,
        }
        md += _section(
            name, summary, rel, seconds=eval_seconds.get(name), too_short=trend["too_short"]
        )
    text = json.dumps(report, indent=2, allow_nan=False, default=_json_default)
    atomic_write_text(run_dir / "report.json", text + "\n")
    atomic_write_text(run_dir / "report.md", "\n".join(md))
    return json.loads(text)


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        v = obj.item()
        return v if not (isinstance(v, float) and math.isinf(v)) else None
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
