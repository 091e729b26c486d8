"""Evaluate a derainer on a dataset split next to the do-nothing baseline; write the report.

Metrics (:mod:`rainset.metrics`), on the uint8 output (rounded, clipped) against the uint8
clean image, whole image (no border crop):

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from rainset import metrics
from rainset.dataset import Dataset
from rainset.fsutil import atomic_path, atomic_write_text
from rainset.image import write_image
from rainset.train.data import Item, items

__all__ = [
    "PSNR_CAP",
    "METRICS",
    "ImageScore",
    "score",
    "evaluate",
    "summarize",
    "plot_curves",
    "example_grid",
    "write_report",
]

logger = logging.getLogger(__name__)

#: PSNR (dB) reported for identical images.
PSNR_CAP = 100.0
METRICS = ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")
CONVENTIONS = (
    "uint8 output (rounded, clipped) vs uint8 clean, whole image; RGB: all channels, data "
    "range 255; Y: BT.601 studio range (16-235), unrounded (BasicSR test_y_channel); SSIM: "
    "11x11 Gaussian window, sigma 1.5, valid region (rainset.metrics); PSNR of identical "
    f"images capped at {PSNR_CAP:g} dB"
)


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


def _pick_examples(item_list: list[Item], n: int) -> set[str]:
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
) -> Iterator[ImageScore]:
    """Score a derainer on every image of a split, next to the identity baseline.

    Parameters
    ----------
    derain : callable (H, W, 3) uint8 -> (H, W, 3) uint8
        The derainer, e.g. ``functools.partial(derain_image, model)``.
    dataset : the dataset to evaluate on.
    split : ``"test"``, ``"train"``, ``"val"`` or None (every sample).
    examples : how many images (spread over scenes) carry their (rainy, output, clean) in
        :attr:`ImageScore.example`.

    Yields
    ------
    score : ImageScore, one per image, in manifest order.
    """
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 0:
        from rainset.errors import ParameterError

        raise ParameterError("examples", f"must be a whole number >= 0, got {examples!r}")
    item_list = items(dataset, split=split)
    keep = _pick_examples(item_list, examples)
    for it in item_list:
        rainy = dataset.load({"id": it.id, "rainy": it.rainy}, "rainy")
        clean = dataset.load({"id": it.id, "clean": it.clean}, "clean")
        out = derain(rainy)
        yield ImageScore(
            it.id,
            it.scene,
            score(out, clean),
            score(rainy, clean),
            (rainy, out, clean) if it.id in keep else None,
        )


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
    ):
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
    rows = []
    for triple in examples:
        h, w = triple[0].shape[:2]
        size = (width, max(1, round(h * width / w)))
        panels = [cv2.resize(p, size, interpolation=cv2.INTER_AREA) for p in triple]
        gutter = np.full((size[1], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([panels[0], gutter, panels[1], gutter, panels[2]], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


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


def _section(title: str, summary: dict, images_rel: str | None) -> list[str]:
    head = "| | PSNR RGB (dB) | SSIM RGB | PSNR Y (dB) | SSIM Y |\n|---|---|---|---|---|"
    g = summary["gain"]
    verdict = "beats" if g["psnr_rgb"] > 0 and g["ssim_rgb"] > 0 else "does NOT beat"
    lines = [
        f"## {title}",
        "",
        f"{summary['images']} images. SPANet {verdict} the do-nothing baseline "
        f"({g['psnr_rgb']:+.2f} dB PSNR, {g['ssim_rgb']:+.4f} SSIM on RGB).",
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
        lines += ["", f"![rainy | SPANet | clean]({images_rel})", ""]
    return lines + [""]


def write_report(
    run_dir: str | Path,
    *,
    info: dict,
    evaluations: dict[str, tuple[dict, list[ImageScore]]],
    log: list[dict],
) -> dict:
    """Write ``report.json``, ``report.md``, ``loss.png`` and ``examples-<name>.png``.

    Parameters
    ----------
    run_dir : the run folder.
    info : run facts for the header: ``dataset``, ``config``, ``device``, ``parameters``,
        ``train_images``, ``train_seconds``, ``mask_threshold``, ... (JSON-serialisable).
    evaluations : name (e.g. ``"test"`` or another dataset's path) -> (summary from
        :func:`summarize`, the per-image scores).
    log : the training log records (for the curves).

    Returns
    -------
    report : dict, what ``report.json`` holds.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    report = {"info": info, "conventions": CONVENTIONS, "evaluations": {}}
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
        "",
    ]
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
        ex = [s.example for s in scores if s.example is not None]
        if ex:
            rel = f"examples-{k}.png"
            write_image(run_dir / rel, example_grid(ex))
        report["evaluations"][name] = {
            "summary": summary,
            "images": [s.to_json() for s in scores],
            "examples": rel,
        }
        md += _section(name, summary, rel)
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
