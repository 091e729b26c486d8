"""GT-Rain's layout (Ba et al., ECCV 2022): one folder per scene, rainy ``*-R-*`` and clean
``*-C-000`` frames side by side.

GT-Rain's loader takes every scene folder, the one ``*C-000.png`` in it as the clean image
and every ``*R-*.png`` as a rainy frame of it (PNG only). rainset writes
``OUT/<split>/G/G-R-F.png`` and ``OUT/<split>/G/G-C-000.png``, where a scene ``G`` is every
frame sharing one clean image (a build-gt window; the name is the clean image's path,
:func:`~rainset.exchange._common.group_names`) and ``F`` the sample id as a file name. JPEG
images are written as PNG with the same pixels (the loader reads ``*.png`` only); PNGs are
linked. Masks and other maps have no place in the layout and are left out.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path, PurePosixPath
from typing import Literal

from rainset.dataset import Dataset
from rainset.errors import InputError
from rainset.exchange._common import (
    ExportResult,
    Layout,
    LayoutPair,
    NameTable,
    Placer,
    clean_up_refusals,
    close_output,
    decode_name,
    encode_name,
    export_state,
    group_names,
    open_checked,
    open_output,
    paired_samples,
    progress_iter,
    selected_splits,
    timelapse_note,
)
from rainset.image import is_image_path
from rainset.inputs import natural_key as _natural  # the one natural order

__all__ = ["export_gtrain", "read_gtrain", "RAINY_GLOB", "CLEAN_GLOB"]

#: The patterns GT-Rain's loader globs in a scene folder.
RAINY_GLOB, CLEAN_GLOB = "*R-*.png", "*C-000.png"


@clean_up_refusals
def export_gtrain(
    dataset: str | os.PathLike | Dataset,
    out: str | os.PathLike,
    *,
    split: str = "all",
    link: Literal["symlink", "hardlink", "copy"] | None = None,
    progress=None,
) -> ExportResult:
    """Export a dataset in GT-Rain's scene-folder layout; rerunning resumes.

    Parameters
    ----------
    dataset, out, split, link, progress : as :func:`rainset.exchange.export_basicsr`.

    Returns
    -------
    ExportResult

    Raises
    ------
    InputError
        A scene or sample name that GT-Rain's patterns would misread (a clean image's name
        matching ``*R-*.png``, or a rainy one matching ``*C-000.png``).
    """
    ds = open_checked(dataset)
    splits = selected_splits(ds, split)
    resumed = open_output(out, ds, "gtrain", {"split": split})
    out = Path(out)
    placer = Placer(link)
    result = ExportResult(out, "gtrain", resumed=resumed, notes=timelapse_note(ds, "gtrain"))
    has_masks = False
    for sp in splits:
        samples = paired_samples(ds, sp)
        groups = group_names(sorted({s.clean for s in samples}))
        table = NameTable()
        for s in progress_iter(samples, progress):
            has_masks = has_masks or s.mask is not None
            g = groups[s.clean]
            rainy_name = f"{g}-R-{encode_name(s.id)}.png"
            clean_name = f"{g}-C-000.png"
            if fnmatch.fnmatchcase(clean_name, RAINY_GLOB) or fnmatch.fnmatchcase(
                rainy_name, CLEAN_GLOB
            ):
                raise InputError(
                    f"{ds.path(s.rainy)}: its GT-Rain names {rainy_name!r} and {clean_name!r} "
                    "would be misread by GT-Rain's loader (a clean name holding 'R-', or a rainy "
                    "one ending in 'C-000'); rename the sample or its scene."
                )
            table.claim(f"{g}/{rainy_name}", s.rainy)
            for rel, name in ((s.rainy, rainy_name), (s.clean, clean_name)):
                dst = out / sp / g / name
                if PurePosixPath(rel).suffix.lower() == ".png":
                    placer.place(ds.path(rel), dst)
                else:
                    placer.convert_png(ds.path(rel), dst)
        result.counts[sp] = len(samples)
    if placer.converted:
        result.notes.append(
            f"{placer.converted} JPEG images were written as PNG (same pixels): GT-Rain's loader "
            "reads *.png only."
        )
    if has_masks:
        result.notes.append("masks have no place in the GT-Rain layout and were left out.")
    result.notes += placer.notes
    close_output(out, {"counts": result.counts, "files": result.files})
    return result


def read_gtrain(root: str | os.PathLike) -> Layout:
    """The pairs of a GT-Rain folder, by GT-Rain's rules (see the module docstring).

    The scene is the folder name; the id is ``<scene>/<frame name>``, or, in a rainset export,
    the sample id the frame name encodes.

    Raises
    ------
    InputError
        No scene folders, a scene folder without exactly one ``*C-000.png``, or one with no
        rainy frame.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder.")
    ours = export_state(root) is not None
    pairs, unmatched = [], []
    scenes = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                    key=lambda p: _natural(p.name))
    for folder in scenes:
        names = [p.name for p in folder.iterdir() if p.is_file()]
        cleans = [n for n in names if fnmatch.fnmatchcase(n, CLEAN_GLOB)]
        rainy = sorted((n for n in names if fnmatch.fnmatchcase(n, RAINY_GLOB)
                        and n not in cleans), key=_natural)
        if len(cleans) != 1:
            raise InputError(
                f"{folder}: a GT-Rain scene folder holds one *C-000.png, found {len(cleans)}."
            )
        if not rainy:
            raise InputError(f"{folder}: no rainy frame (*R-*.png) in this scene folder.")
        unmatched += [f"{folder.name}/{n}" for n in sorted(names, key=_natural)
                      if n not in rainy and n not in cleans and is_image_path(n)]
        prefix = f"{folder.name}-R-"
        for n in rainy:
            stem = PurePosixPath(n).stem
            if ours and stem.startswith(prefix):
                sid, scene = decode_name(stem[len(prefix) :]), decode_name(folder.name)
            else:
                sid, scene = f"{folder.name}/{stem}", folder.name
            pairs.append(LayoutPair(sid, scene, folder / n, folder / cleans[0]))
    if not pairs:
        raise InputError(f"{root}: no GT-Rain scene folders in it.")
    return Layout(pairs, unmatched)
