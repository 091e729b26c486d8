"""Options and messages about a run's inputs (scene ids, duplicate sources, overlapping outputs)
shared by build-gt, pairs and import paired."""

from __future__ import annotations

from pathlib import Path

import click

from rainset.options import SceneOptions

# Library parameter -> the option that sets it (for SceneIdError's advice).
FLAGS = {
    "root": "--root DIR",
    "scene": "--scene NAME",
    "allow_duplicates": "--allow-duplicate-sources",
    "allow_duplicate_sources": "--allow-duplicate-sources",  # rainset.pipelines' name
}


def scene_options(*, scene: bool = True):
    """``--root``, ``--scene`` (optional) and ``--allow-duplicate-sources``."""

    def deco(f):
        f = click.option(
            "--allow-duplicate-sources", is_flag=True, default=SceneOptions.allow_duplicate_sources,
            help="Keep inputs whose contents another input (or a recorded source) already has "
            "under another scene id (a copy, a link).",
        )(f)  # fmt: skip
        if scene:
            f = click.option(
                "--scene", "scene_name", default=SceneOptions.scene, metavar="NAME",
                help="Scene id of the single input (instead of its file or folder name).",
            )(f)  # fmt: skip
        f = click.option(
            "--root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=SceneOptions.root,
            help="Scene ids are the inputs' paths relative to DIR (cam1/clip, cam2/clip) "
            "instead of their file or folder names.",
        )(f)  # fmt: skip
        return f

    return deco


def planned(call):
    """Run ``call()`` (a source plan); a SceneIdError's advice names the options."""
    from rainset.errors import InputError
    from rainset.inputs import SceneIdError

    try:
        return call()
    except SceneIdError as exc:
        advice = " or ".join(FLAGS.get(p, p) for p in exc.params)
        raise InputError(f"{exc.text}; use {advice}.") from None
