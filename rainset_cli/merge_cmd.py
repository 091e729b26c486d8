"""``rainset merge``: shards (finished datasets of one kind) into one dataset."""

from __future__ import annotations

from pathlib import Path

import click

from rainset_cli.common import FiniteFloat, check_test_scenes, console, out_path, quiet, say


@click.command("merge")
@click.argument("shards", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path), callback=out_path,
              help="The merged dataset (created, or resumed / extended when it holds the same kind).")
@click.option("--test-scenes", default=None, help="Comma-separated scenes for the test split.  [default: the shards' rule]")
@click.option("--test-fraction", type=FiniteFloat(0, 1), default=None,
              help="Share of scenes (by a stable hash of the id) in the test split.  [default: the shards' rule]")
@click.option("--copy", is_flag=True, help="Copy images instead of hard-linking them.")
def merge(shards, out, test_scenes, test_fraction, copy):
    """Merge SHARDS (datasets of one kind made with the same options, e.g. one job per video)
    into one dataset equal to a single run over all their inputs: ids kept, sources and counts
    summed, review decisions kept, splits recomputed by the scene hash. Conflicts (one id or
    file with different contents) are refused before anything is written; rerunning resumes.
    """
    from rainset.dataset import SplitRule
    from rainset.merge import merge as merge_shards

    rule = None
    if test_scenes is not None or test_fraction is not None:
        named = tuple(s for s in (test_scenes or "").split(",") if s)
        if named:  # scenes the shards do not hold are refused, as by every command
            from rainset.dataset import open_dataset

            scenes = sorted({sc for sh in shards for sc in open_dataset(sh).meta.get("counts", {}).get("per_scene", {})})
            check_test_scenes(named, scenes, shards[0] if len(shards) == 1 else f"the {len(shards)} shards")
        rule = SplitRule(
            test_scenes=named,
            test_fraction=0.2 if test_fraction is None else test_fraction,
        )
    result = merge_shards(shards, out, split_rule=rule, link=not copy)
    for note in result.notes:
        say(f"[yellow]note[/] {note}")
    if not quiet():
        console.print(
            f"merged {result.shards} shard(s) into {out}: {result.records} new record(s)"
            + (f", {result.pairs} pair(s)" if result.pairs else "")
            + f"; files {result.linked} linked, {result.copied} copied, {result.present} already there"
        )


merge.library_params = {"split_rule": "test_fraction", "shards": "shards"}
commands = [merge]
