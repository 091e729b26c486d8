"""``rainset import spa|gtrain|basicsr|rain100``: published layouts, read by their own rules.

Each command lists the layout's pairs with its reader in :mod:`rainset.exchange` and writes
them with the importer's writer (:func:`rainset.importer.import_paired`); ``import paired``
(in ``train_cmd``) stays for folders matched by a key. These commands join the ``import``
group through :data:`layout_commands`.
"""

from __future__ import annotations

from pathlib import Path

import click

from rainset_cli.common import (
    check_test_scenes,
    console,
    out_path,
    progress,
    say,
    split_options,
)


def _common(f):
    f = click.option(
        "--note", default="imported published dataset",
        help="Licence / provenance note recorded with the sources.",
    )(f)
    f = click.option(
        "--link", type=click.Choice(["symlink", "hardlink", "copy"]), default=None,
        help="With --format keep: how files get in. Default: hard links where the filesystem "
        "allows, else copies.",
    )(f)
    f = click.option(
        "--format", "image_format", type=click.Choice(["keep", "png", "jpg"]), default="keep",
        show_default=True,
        help="keep: every file as it is (a JPEG with an EXIF rotation is written upright as "
        "PNG); png/jpg: re-encode.",
    )(f)
    f = split_options("scene")(f)
    f = click.option(
        "--split", "whole_split", type=click.Choice(["train", "test"]), default=None,
        help="Put every scene in this split (an official test set imports whole as test).",
    )(f)
    return click.option(
        "-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
        callback=out_path, help="Dataset folder to write (rerun to resume).",
    )(f)


def _run(layout, root: Path, out: Path, sources, *, fmt: str, whole_split, test_scenes,
         test_fraction, image_format, link, note, params: dict) -> None:
    from rainset.dataset import SplitRule, open_dataset
    from rainset.exchange import import_plans
    from rainset.importer import import_paired

    tests = tuple(s.strip() for s in test_scenes.split(",") if s.strip())
    if whole_split is not None and tests:
        raise click.BadParameter("give --split or --test-scenes, not both", param_hint="--split")
    scenes = sorted({p.scene for p in layout})
    check_test_scenes(tests, scenes, root)
    if layout.unmatched:
        shown = ", ".join(layout.unmatched[:3]) + (" ..." if len(layout.unmatched) > 3 else "")
        say(f"note: {len(layout.unmatched)} image files match no pair and are not imported "
            f"({shown})")
    if whole_split is not None:
        rule = SplitRule(test_fraction=1.0 if whole_split == "test" else 0.0)
    else:
        rule = SplitRule(test_scenes=tests, test_fraction=test_fraction)
    plans = import_plans(layout, root)
    if link is not None and image_format != "keep":
        raise click.BadParameter("needs --format keep (files are placed as they are)",
                                 param_hint="--link")
    ids = import_paired(plans, out, split_rule=rule, image_format=image_format, link=link,
                        params={"layout": fmt, **params}, sources=tuple((s, note) for s in sources),
                        tool=f"rainset import {fmt}")
    for _ in progress(ids, total=len(plans), desc=f"import {fmt}"):
        pass
    counts = open_dataset(out).meta["counts"]
    per = counts["per_split"]
    console.print(f"{out}: {counts['samples']} pairs in {len(scenes)} scenes "
                  f"(train {per['train']}, test {per['test']})", markup=False)


@click.command("spa")
@click.argument("list_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_common
def import_spa(list_file, out, whole_split, test_scenes, test_fraction, image_format, link, note):
    """Import SPA-Data from its list file (real_world.txt: "rain gt" per line).

    Scenes are SPA-Data's scene folders (real_world/000/...).
    """
    from rainset.exchange.spa import read_spa

    _run(read_spa(list_file), list_file.parent, out, [list_file.parent], fmt="spa",
         whole_split=whole_split, test_scenes=test_scenes, test_fraction=test_fraction,
         image_format=image_format, link=link, note=note, params={"list_file": list_file.name})


@click.command("gtrain")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_common
def import_gtrain(root, out, whole_split, test_scenes, test_fraction, image_format, link, note):
    """Import GT-Rain: scene folders of *-R-*.png rainy frames and one *-C-000.png clean."""
    from rainset.exchange.gtrain import read_gtrain

    _run(read_gtrain(root), root, out, [root], fmt="gtrain", whole_split=whole_split,
         test_scenes=test_scenes, test_fraction=test_fraction, image_format=image_format,
         link=link, note=note, params={})


@click.command("basicsr")
@click.argument("lq_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("gt_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--meta-info", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="BasicSR meta_info file naming the pairs (first token a line).")
@_common
def import_basicsr(lq_dir, gt_dir, meta_info, out, whole_split, test_scenes, test_fraction,
                   image_format, link, note):
    """Import BasicSR paired folders (rainy LQ_DIR first, clean GT_DIR), equal file names.

    Names written by `rainset export --to basicsr` give back their sample ids.
    """
    import os

    from rainset.exchange.basicsr import read_basicsr

    root = Path(os.path.commonpath([lq_dir.absolute(), gt_dir.absolute()]))
    sources = [lq_dir, gt_dir] + ([meta_info] if meta_info else [])
    _run(read_basicsr(lq_dir, gt_dir, meta_info=meta_info), root, out, sources,
         fmt="basicsr", whole_split=whole_split, test_scenes=test_scenes,
         test_fraction=test_fraction, image_format=image_format, link=link, note=note,
         params={"meta_info": meta_info.name if meta_info else None})


@click.command("rain100")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_common
def import_rain100(root, out, whole_split, test_scenes, test_fraction, image_format, link, note):
    """Import Rain100L/H or Rain200: rain-N against norain-N, or JORDER's rain/X2/norain-NxK.

    Each clean image is a scene.
    """
    from rainset.exchange.rain100 import read_rain100

    _run(read_rain100(root), root, out, [root], fmt="rain100", whole_split=whole_split,
         test_scenes=test_scenes, test_fraction=test_fraction, image_format=image_format,
         link=link, note=note, params={})


#: The commands the ``import`` group adds (``rainset_cli.train_cmd``).
layout_commands = [import_spa, import_gtrain, import_basicsr, import_rain100]
