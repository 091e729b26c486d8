"""``rainset import spa|gtrain|basicsr|rain100``: published layouts, read by their own rules.

Each command lists the layout's pairs with its reader in :mod:`rainset.exchange` and writes
them with the importer's writer (:func:`rainset.importer.import_paired`); ``import paired``
(in ``train_cmd``) stays for folders matched by a key. These commands join the ``import``
group through :data:`layout_commands`.
"""

from __future__ import annotations

from pathlib import Path

import click

from rainset.options import ImportOptions
from rainset_cli.common import (
    console,
    out_path,
    say,
    split_options,
)

_I = ImportOptions  # the defaults


def _common(f):
    f = click.option(
        "--note", default=_I.note,
        help="Licence / provenance note recorded with the sources.",
    )(f)
    f = click.option(
        "--link", type=click.Choice(["symlink", "hardlink", "copy"]), default=_I.link,
        help="With --format keep: how files get in. Default: hard links where the filesystem "
        "allows, else copies.",
    )(f)
    f = click.option(
        "--format", "image_format", type=click.Choice(["keep", "png", "jpg"]), default=_I.image_format,
        show_default=True,
        help="keep: every file as it is (a JPEG with an EXIF rotation is written upright as "
        "PNG); png/jpg: re-encode.",
    )(f)
    f = split_options("scene")(f)
    f = click.option(
        "--split", "whole_split", type=click.Choice(["train", "test"]), default=_I.split,
        help="Put every scene in this split (an official test set imports whole as test).",
    )(f)
    return click.option(
        "-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
        callback=out_path, help="Dataset folder to write (rerun to resume).",
    )(f)


def _run(layout: str, source, out: Path, *, whole_split, test_scenes, test_fraction, image_format, link,
         note, **more) -> None:
    """:func:`rainset.import_dataset` with a progress bar and the one-line summary."""
    import rainset
    from rainset_cli.show import Show

    lines = {"note": lambda ev, show: say(f"note: {ev.message}")}
    with Show(f"import {layout}", lines=lines) as show:
        result = rainset.import_dataset(
            layout, source, out, split=whole_split, test_scenes=test_scenes, test_fraction=test_fraction,
            image_format=image_format, link=link, note=note, progress=show, **more,
        )  # fmt: skip
    per = result.counts["per_split"]
    console.print(f"{out}: {result.counts['samples']} pairs in {result.scenes} scenes "
                  f"(train {per['train']}, test {per['test']})", markup=False)  # fmt: skip


@click.command("spa")
@click.argument("list_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_common
def import_spa(list_file, out, whole_split, test_scenes, test_fraction, image_format, link, note):
    """Import SPA-Data from its list file (real_world.txt: "rain gt" per line).

    Scenes are SPA-Data's scene folders (real_world/000/...).
    """
    _run("spa", list_file, out, whole_split=whole_split, test_scenes=test_scenes, test_fraction=test_fraction,
         image_format=image_format, link=link, note=note)


@click.command("gtrain")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_common
def import_gtrain(root, out, whole_split, test_scenes, test_fraction, image_format, link, note):
    """Import GT-Rain: scene folders of *-R-*.png rainy frames and one *-C-000.png clean."""
    _run("gtrain", root, out, whole_split=whole_split, test_scenes=test_scenes, test_fraction=test_fraction,
         image_format=image_format, link=link, note=note)


@click.command("basicsr")
@click.argument("lq_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("gt_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--meta-info", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=_I.meta_info, help="BasicSR meta_info file naming the pairs (first token a line).")
@_common
def import_basicsr(lq_dir, gt_dir, meta_info, out, whole_split, test_scenes, test_fraction,
                   image_format, link, note):
    """Import BasicSR paired folders (rainy LQ_DIR first, clean GT_DIR), equal file names.

    Names written by `rainset export --to basicsr` give back their sample ids.
    """
    _run("basicsr", (lq_dir, gt_dir), out, whole_split=whole_split, test_scenes=test_scenes,
         test_fraction=test_fraction, image_format=image_format, link=link, note=note, meta_info=meta_info)


@click.command("rain100")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_common
def import_rain100(root, out, whole_split, test_scenes, test_fraction, image_format, link, note):
    """Import Rain100L/H or Rain200: rain-N against norain-N, or JORDER's rain/X2/norain-NxK.

    Each clean image is a scene.
    """
    _run("rain100", root, out, whole_split=whole_split, test_scenes=test_scenes, test_fraction=test_fraction,
         image_format=image_format, link=link, note=note)


#: The commands the ``import`` group adds (``rainset_cli.train_cmd``).
layout_commands = [import_spa, import_gtrain, import_basicsr, import_rain100]
for _command in layout_commands:
    _command.library_params = {"split": "whole_split"}
