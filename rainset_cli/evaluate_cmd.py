"""``rainset evaluate``: score any model's outputs against a dataset's clean images (no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rainset.options import EvaluateOptions
from rainset_cli.common import console, require_dataset, say

_E = EvaluateOptions


@click.command("evaluate")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--outputs",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A folder of outputs named by sample id (DIR/<id>.png; an id's / is a sub-folder), "
    "or a mapping file (JSON {id: file}, or CSV rows id,file; files relative to it).",
)
@click.option(
    "--split",
    type=click.Choice(["test", "train", "val", "all"]),
    default=_E.split,
    show_default=True,
    help="Samples to score (a dataset without that split is scored on all samples).",
)
@click.option(
    "--eval-crop",
    type=int,
    default=_E.eval_crop,
    help="Score the centre crop of this size (pixels, >= 16), as `validate --eval-crop`.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON on stdout.")
def evaluate(dataset, outputs, split, eval_crop, as_json):
    """Score a model's outputs against DATASET's clean images, per scene and overall.

    Metrics are rainset's (PSNR and SSIM on RGB and on Y, uint8, whole image; see
    docs/metrics.md), next to the do-nothing baseline (the rainy input). Samples without an
    output are left out and counted.
    """
    from rainset.evaluate import evaluate_outputs

    require_dataset(dataset)

    def show(ev) -> None:
        if ev.kind == "note":
            say(ev.message)

    result = evaluate_outputs(
        dataset, outputs, split=None if split == "all" else split, eval_crop=eval_crop,
        progress=show,
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, allow_nan=False))
        return
    s = result.summary
    head = f"{'':24} {'images':>6} {'PSNR RGB':>9} {'SSIM RGB':>9} {'PSNR Y':>8} {'SSIM Y':>8}"
    lines = [head]

    def row(name: str, block: dict, who: str) -> str:
        m = block[who]
        return (
            f"{name:24} {block['images']:>6} {m['psnr_rgb']:>9.2f} {m['ssim_rgb']:>9.4f} "
            f"{m['psnr_y']:>8.2f} {m['ssim_y']:>8.4f}"
        )

    for scene, block in s["per_scene"].items():
        lines.append(row(scene[:24], block, "model"))
    lines.append(row("all (outputs)", s, "model"))
    lines.append(row("all (rainy input)", s, "baseline"))
    g = s["gain"]
    lines.append(f"gain over the rainy input: {g['psnr_rgb']:+.2f} dB PSNR, {g['ssim_rgb']:+.4f} SSIM (RGB)")
    if result.missing:
        lines.append(f"{len(result.missing)} sample(s) without an output were not scored")
    for line in lines:
        console.print(line, highlight=False, markup=False)


commands = [evaluate]
