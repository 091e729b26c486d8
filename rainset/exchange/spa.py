"""SPA-Data's layout (SPANet, CVPR 2019) and its list file.

SPA-Data keeps rainy frame ``f`` of scene ``S`` cut at position ``x, y`` as
``real_world/S/S-f/S-f_x_y.png`` and the scene's clean image at that position as
``real_world_gt/S/S_x_y.png``; ``real_world.txt`` lists ``rain_path gt_path`` per line (SPANet's
loader splits each line at its one space). rainset writes:

- ``OUT/<split>/real_world/G/G-F/G-F_x_y.EXT`` and ``OUT/<split>/real_world_gt/G/G_x_y.EXT``,
  where ``G`` names the clean image (a scene of SPA-Data: every frame sharing one clean image,
  so a build-gt window) and ``F`` is the sample id as a file name
  (:func:`~rainset.exchange._common.encode_name`);
- ``OUT/<split>_real_world.txt`` with paths relative to ``OUT``.

Without ``patch`` each image is linked whole at ``x = y = 0``. With ``patch`` (SPA-Data
released 256 x 256 patches, ``stride`` 256) the rainy and clean images are cut into the same
windows, ``x, y`` the window's left and top pixel; the clean patches of a scene are written
once, not per frame; images smaller than a patch give none (the result's notes count them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Literal

from rainset.dataset import Dataset
from rainset.errors import InputError, ParameterError
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
from rainset.fsutil import atomic_write_text
from rainset.image import read_image, write_image

__all__ = ["export_spa", "read_spa"]


@clean_up_refusals
def export_spa(
    dataset: str | os.PathLike | Dataset,
    out: str | os.PathLike,
    *,
    split: str = "all",
    link: Literal["symlink", "hardlink", "copy"] | None = None,
    patch: int | None = None,
    stride: int | None = None,
    progress=None,
) -> ExportResult:
    """Export a dataset in SPA-Data's layout with its list file; rerunning resumes.

    Parameters
    ----------
    dataset, out, split, link, progress : as :func:`rainset.exchange.export_basicsr`.
    patch : cut into ``patch x patch`` windows (PNG); None: whole images, linked.
    stride : step between windows (default ``patch``); only with ``patch``.

    Returns
    -------
    ExportResult
    """
    if patch is None and stride is not None:
        raise ParameterError("stride", "needs `patch` (whole images have no stride)")
    if patch is not None and patch < 1:
        raise ParameterError("patch", f"must be >= 1, got {patch}")
    stride = patch if stride is None else stride
    if stride is not None and stride < 1:
        raise ParameterError("stride", f"must be >= 1, got {stride}")
    ds = open_checked(dataset)
    splits = selected_splits(ds, split)
    resumed = open_output(out, ds, "spa", {"split": split, "patch": patch, "stride": stride})
    out = Path(out)
    placer = Placer(link)
    result = ExportResult(out, "spa", resumed=resumed, notes=timelapse_note(ds, "spa"))
    too_small = 0
    for sp in splits:
        samples = paired_samples(ds, sp)
        groups = group_names(sorted({s.clean for s in samples}))
        table = NameTable()
        lines = []
        cut_clean: set[str] = set()
        for s in progress_iter(samples, progress):
            g = groups[s.clean]
            f = f"{g}-{encode_name(s.id)}"
            table.claim(f, s.id)
            rain_dir = f"{sp}/real_world/{g}/{f}"
            gt_dir = f"{sp}/real_world_gt/{g}"
            if patch is None:
                ext = PurePosixPath(s.rainy).suffix.lower()
                c_ext = PurePosixPath(s.clean).suffix.lower()
                rain_rel, gt_rel = f"{rain_dir}/{f}_0_0{ext}", f"{gt_dir}/{g}_0_0{c_ext}"
                placer.place(ds.path(s.rainy), out / rain_rel)
                placer.place(ds.path(s.clean), out / gt_rel)
                lines.append(f"{rain_rel} {gt_rel}\n")
                continue
            windows = _windows(ds, s, patch, stride)
            if not windows:
                too_small += 1
                continue
            rainy = clean = None
            for y, x in windows:
                rain_rel = f"{rain_dir}/{f}_{x}_{y}.png"
                gt_rel = f"{gt_dir}/{g}_{x}_{y}.png"
                if not (out / rain_rel).is_file():
                    rainy = read_image(ds.path(s.rainy)) if rainy is None else rainy
                    write_image(out / rain_rel, rainy[y : y + patch, x : x + patch])
                if gt_rel not in cut_clean and not (out / gt_rel).is_file():
                    clean = read_image(ds.path(s.clean)) if clean is None else clean
                    write_image(out / gt_rel, clean[y : y + patch, x : x + patch])
                cut_clean.add(gt_rel)
                lines.append(f"{rain_rel} {gt_rel}\n")
        name = f"{sp}_real_world.txt"
        atomic_write_text(out / name, "".join(lines))
        result.counts[sp] = len(lines)
        result.files.append(name)
    if too_small:
        result.notes.append(f"{too_small} images smaller than a {patch}x{patch} patch gave none.")
    result.notes += placer.notes
    close_output(out, {"counts": result.counts, "files": result.files})
    return result


def _windows(ds: Dataset, s, patch: int, stride: int) -> list[tuple[int, int]]:
    from rainset.dataset import image_size

    h, w = image_size(ds.path(s.rainy), decode=False)
    return [
        (y, x)
        for y in range(0, h - patch + 1, stride)
        for x in range(0, w - patch + 1, stride)
    ]


_POSITION = re.compile(r"^(.*)_(\d+)_(\d+)$")


def read_spa(list_file: str | os.PathLike) -> Layout:
    """The pairs of an SPA-Data list file (``rain_path gt_path`` per line).

    Paths are relative to the list file's folder (a leading ``/`` or ``./`` is dropped, as the
    published lists start that way). The scene is the ``S`` folder of ``real_world/S/...``; the
    id is the rainy path without suffix, or, in a rainset export, the sample id its name
    encodes (with ``/x_y`` added for a patch other than the whole image).

    Raises
    ------
    InputError
        The list cannot be read, a line does not hold two paths, or it names missing images
        (the first few are named).
    """
    list_file = Path(list_file)
    try:
        text = list_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{list_file}: cannot be read ({exc}).") from None
    root = list_file.parent
    state = export_state(root)
    patched = state is not None and state.get("options", {}).get("patch") is not None
    pairs, missing = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InputError(f"{list_file}: line {n} does not hold two paths ('rain gt').")
        rain, gt = (p.lstrip("/").removeprefix("./") for p in parts)
        missing += [p for p in (rain, gt) if not (root / p).is_file()]
        rp = PurePosixPath(rain)
        scene = rp.parent.parent.name or rp.parent.name
        sid = str(rp.with_suffix(""))
        m = _POSITION.match(rp.stem)
        if state is not None and m and rp.parent.name.startswith(scene + "-"):
            sid = decode_name(rp.parent.name[len(scene) + 1 :])
            if patched:
                sid = f"{sid}/{m.group(2)}_{m.group(3)}"
            scene = decode_name(scene)
        pairs.append(LayoutPair(sid, scene, root / rain, root / gt))
    if missing:
        raise InputError(
            f"{list_file} names {len(missing)} missing images (first: {', '.join(missing[:3])})."
        )
    if not pairs:
        raise InputError(f"{list_file}: no pairs listed.")
    return Layout(pairs)  # the list is the layout: no file of it is left over
