"""``rainset info`` and ``rainset check``: look at footage and datasets."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from rainset_cli.common import console, err_console


def _is_dataset(path: Path) -> bool:
    from rainset.dataset import is_dataset

    return is_dataset(path)


def _print_problems(problems, root: Path) -> None:
    for p in problems:
        where = p.path + (f":{p.line}" if p.line else "")
        err_console.print(f"[red]problem[/] {where}: {p.message}", markup=True, highlight=False)


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--quick",
    is_flag=True,
    help="Trust the container header instead of decoding every frame (misses truncation).",
)
def info(path: Path, quick: bool) -> None:
    """Describe a video, a frame folder or a rainset dataset.

    For footage every frame is decoded (so a truncated file is caught) unless --quick; for a
    dataset, counts per split and scene and the result of `rainset check`.
    """
    if _is_dataset(path):
        _dataset_info(path)
        return
    if path.is_dir():
        _refuse_other_folder(path)
    from rainset.video import probe

    vi = probe(path, decode=not quick)
    table = Table(show_header=False, box=None)
    table.add_row("path", str(vi.path))
    table.add_row("kind", vi.kind)
    table.add_row("frames", f"{vi.frame_count}" + ("" if vi.counted else " (from header)"))
    table.add_row("size", f"{vi.width}x{vi.height}")
    if vi.fps:
        table.add_row("fps", f"{vi.fps:g}")
    if vi.duration:
        table.add_row("duration", f"{vi.duration:.2f} s")
    if vi.codec:
        table.add_row("codec", vi.codec)
    if vi.rotation:
        table.add_row("rotation", f"{vi.rotation} deg (applied)")
    console.print(table)


def _refuse_other_folder(path: Path) -> None:
    """A folder that is neither a dataset nor a folder of frames: say what it is instead."""
    from rainset.dataset.layout import MANIFEST, META, manifest_path
    from rainset.errors import InputError
    from rainset.image import is_image_path
    from rainset.video import VIDEO_SUFFIXES

    entries = [e for e in path.iterdir() if not e.name.startswith(".")]
    if any(e.is_file() and is_image_path(e) for e in entries):
        return  # a frame folder
    if manifest_path(path).is_file():
        raise InputError(
            f"{path}: not a rainset dataset: it has a {MANIFEST} but no {META} "
            "(damaged, or not written by rainset)."
        )
    videos = sorted(e.name for e in entries if e.is_file() and e.suffix.lower() in VIDEO_SUFFIXES)
    if videos:
        raise InputError(
            f"{path}: not a rainset dataset (no {META}) and not a folder of frames; it "
            f"holds {len(videos)} video(s) such as {videos[0]}: run `rainset info` on one."
        )
    raise InputError(
        f"{path}: not a rainset dataset (no {META}) and no image files in it to read as "
        "frames."
    )


def _dataset_info(root: Path) -> None:
    from rainset.dataset import check, open_dataset

    ds = open_dataset(root)
    counts = ds.meta.get("counts", {})
    console.print(f"[bold]{root}[/]: rainset dataset, kind {ds.kind}, format "
                  f"v{ds.meta.get('format_version')}, made by {ds.meta.get('tool', '?')}")
    table = Table("split", "samples")
    for split, n in sorted((counts.get("per_split") or {}).items()):
        table.add_row(split, str(n))
    console.print(table)
    per_scene = counts.get("per_scene") or {}
    if per_scene:
        st = Table("scene", "split", "samples")
        splits = {}
        for s in ds.samples():
            splits.setdefault(s.get("scene"), s.get("split"))
        for scene, n in sorted(per_scene.items()):
            st.add_row(str(scene), str(splits.get(scene, "?")), str(n))
        console.print(st)
    if counts.get("pairs"):
        console.print(f"pairs: {counts['pairs']}")
    problems = check(root)
    if problems:
        _print_problems(problems, root)
        console.print(f"check: [red]{len(problems)} problem(s)[/]")
        sys.exit(1)
    console.print("check: [green]ok[/]")


@click.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--hashes", is_flag=True, help="Also verify the sha256 of recorded sources.")
def check(dataset: Path, hashes: bool) -> None:
    """Verify a rainset dataset: every path, size, split and pair; exit 1 on any problem."""
    from rainset.dataset import META_NAME, is_dataset
    from rainset.dataset import check as check_dataset
    from rainset.errors import FormatError

    if not is_dataset(dataset):
        raise FormatError(f"{dataset}: not a rainset dataset (it has no {META_NAME}).")
    problems = check_dataset(dataset, verify_hashes=hashes)
    if problems:
        _print_problems(problems, dataset)
        err_console.print(f"{dataset}: {len(problems)} problem(s) found.")
        sys.exit(1)
    console.print(f"{dataset}: ok")


commands = [info, check]
