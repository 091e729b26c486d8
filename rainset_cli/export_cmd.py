"""``rainset export``: a dataset in the layout another trainer reads (rainset.exchange)."""

from __future__ import annotations

from pathlib import Path

import click

from rainset.options import ExportOptions
from rainset_cli.common import console, err_console, out_path

_E = ExportOptions  # the defaults


@click.command("export")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Choice(["basicsr", "hf", "webdataset", "spa", "gtrain"]),
    help="Target layout: BasicSR/Restormer folders, a Hugging Face image folder, WebDataset "
    "shards, SPA-Data or GT-Rain folders.",
)
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    callback=out_path,
    help="Output folder: new or empty (an unfinished export of the same dataset and options "
    "resumes).",
)
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test", "all"]),
    default=_E.split,
    show_default=True,
    help="Split to export; all: one subfolder per split.",
)
@click.option(
    "--link",
    type=click.Choice(["symlink", "hardlink", "copy"]),
    default=_E.link,
    help="How images get there. Default: hard links where the filesystem allows, else copies.",
)
@click.option(
    "--names",
    type=click.Choice(["basicsr", "restormer"]),
    default=_E.names,
    help="basicsr: gt/ and lq/; restormer: target/ and input/ (--to basicsr; default basicsr).",
)
@click.option(
    "--shard-size",
    default=_E.shard_size,
    help="Samples per shard (1000) or MB per shard (100MB) (--to webdataset; default: "
    "rainset.exchange.webdataset.DEFAULT_SHARD_SIZE, 1000 samples).",
)
@click.option("--patch", type=int, default=_E.patch, help="Cut into PATCH x PATCH patches (--to spa).")
@click.option("--stride", type=int, default=_E.stride, help="Step between patches (--to spa; default: --patch).")
def export_cmd(dataset, to, out, split, link, names, shard_size, patch, stride):
    """Write DATASET in another trainer's layout (see docs/exchange.md).

    The images are hard-linked (or symlinked, or copied), never re-encoded unless the layout
    needs another format; labels travel as the layout allows. A dataset that fails `rainset
    check` is refused.
    """
    import rainset
    from rainset_cli.show import Show

    with Show(f"export {to}") as show:
        result = rainset.export_dataset(dataset, out, to=to, split=split, link=link, names=names,
                                        shard_size=shard_size, patch=patch, stride=stride, progress=show)  # fmt: skip
    from rainset_cli.main import with_flags

    for note in result.notes:
        err_console.print(f"note: {with_flags(note, click.get_current_context().command)}",
                          markup=False)
    counts = ", ".join(f"{sp} {n}" for sp, n in result.counts.items())
    unit = "pairs" if to != "spa" or patch is None else "patches"
    verb = "resumed and finished" if result.resumed else "wrote"
    console.print(f"{out}: {verb} a {to} export ({unit}: {counts})", markup=False)


commands = [export_cmd]
