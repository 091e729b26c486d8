"""BasicSR's paired layout (and Restormer's): flat ``gt/`` and ``lq/`` with equal file names.

``OUT/<split>/gt/NAME`` and ``OUT/<split>/lq/NAME`` (``target/`` and ``input/`` with
``names="restormer"``), where ``NAME`` is the sample id made a file name
(:func:`~rainset.exchange._common.encode_name`, ``street01/w0/000012`` ->
``street01__w0__000012.png``), plus ``OUT/<split>_meta_info.txt`` with one line
``NAME (H,W,C)`` per pair, the form BasicSR's ``paired_paths_from_meta_info_file`` reads (it
takes the first space-separated token). BasicSR pairs a gt file with the lq file of the same
name, extension included, and scans each folder without recursion; both hold here.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Literal

from rainset.dataset import Dataset, image_size
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
    open_checked,
    open_output,
    paired_samples,
    progress_iter,
    selected_splits,
    timelapse_note,
)
from rainset.fsutil import atomic_write_text
from rainset.image import is_image_path

__all__ = ["export_basicsr", "read_basicsr", "FOLDERS"]

#: (gt folder, lq folder) per naming convention.
FOLDERS = {"basicsr": ("gt", "lq"), "restormer": ("target", "input")}


@clean_up_refusals
def export_basicsr(
    dataset: str | os.PathLike | Dataset,
    out: str | os.PathLike,
    *,
    split: str = "all",
    link: Literal["symlink", "hardlink", "copy"] | None = None,
    names: Literal["basicsr", "restormer"] = "basicsr",
    progress=None,
) -> ExportResult:
    """Export a dataset as BasicSR (or Restormer) paired folders; rerunning resumes.

    Parameters
    ----------
    dataset : a dataset folder or an opened :class:`~rainset.dataset.Dataset`.
    out : the output folder: new, empty, or holding an unfinished export of the same dataset
        with the same options.
    split : ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (each non-empty split).
    link : how images get into ``out`` (None: hard links where possible, else copies).
    names : ``"basicsr"`` (``gt/``, ``lq/``) or ``"restormer"`` (``target/``, ``input/``).
    progress : optional ``callback(done, total)`` per split.

    Returns
    -------
    ExportResult

    Notes
    -----
    A clean image shared by several rainy frames is linked once per frame name (no re-encoding).
    Where a pair's rainy and clean files have different extensions (a JPEG frame and a PNG
    clean image), the JPEG is written as PNG with the same pixels, since BasicSR needs equal
    names.
    """
    if names not in FOLDERS:
        raise ParameterError("names", f"must be basicsr or restormer, got {names!r}")
    ds = open_checked(dataset)
    splits = selected_splits(ds, split)
    resumed = open_output(out, ds, "basicsr", {"split": split, "names": names})
    out = Path(out)
    placer = Placer(link)
    gt_dir, lq_dir = FOLDERS[names]
    result = ExportResult(out, "basicsr", resumed=resumed, notes=timelapse_note(ds, "basicsr"))
    for sp in splits:
        table = NameTable()
        lines = []
        samples = paired_samples(ds, sp)
        for s in progress_iter(samples, progress):
            r_ext = PurePosixPath(s.rainy).suffix.lower()
            c_ext = PurePosixPath(s.clean).suffix.lower()
            ext = r_ext if r_ext == c_ext else ".png"
            name = encode_name(s.id) + ext
            table.claim(name, s.rainy)
            for rel, folder, own in ((s.rainy, lq_dir, r_ext), (s.clean, gt_dir, c_ext)):
                dst = out / sp / folder / name
                if own == ext:
                    placer.place(ds.path(rel), dst)
                else:
                    placer.convert_png(ds.path(rel), dst)
            h, w = image_size(ds.path(s.rainy), decode=False)
            lines.append(f"{name} ({h},{w},3)\n")
        meta = f"{sp}_meta_info.txt"
        atomic_write_text(out / meta, "".join(lines))
        result.counts[sp] = len(samples)
        result.files.append(meta)
    if placer.converted:
        result.notes.append(
            f"{placer.converted} images whose rainy and clean extensions differ were written as "
            "PNG (same pixels), since BasicSR pairs files of equal names."
        )
    result.notes += placer.notes
    close_output(out, {"counts": result.counts, "files": result.files})
    return result


def read_basicsr(
    lq_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    *,
    meta_info: str | os.PathLike | None = None,
) -> Layout:
    """The pairs of a BasicSR layout, by BasicSR's own rules (rainy = lq, clean = gt).

    Names come from ``meta_info`` (first token of each line) or from a non-recursive scan of
    ``gt_dir``; each needs the same name in ``lq_dir``. The id is the name decoded
    (``a__b.png`` -> ``a/b``) and the scene its first ``/``-part.

    Raises
    ------
    InputError
        A folder is missing or empty, the meta-info file names a missing image, or a gt file
        has no lq file of the same name.
    """
    lq_dir, gt_dir = Path(lq_dir), Path(gt_dir)
    for d in (lq_dir, gt_dir):
        if not d.is_dir():
            raise InputError(f"{d}: no such folder.")
    if meta_info is not None:
        meta_info = Path(meta_info)
        try:
            text = meta_info.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{meta_info}: cannot be read ({exc.strerror}).") from None
        names = [line.strip().split(" ")[0] for line in text.splitlines() if line.strip()]
        missing = [n for n in names if not (gt_dir / n).is_file() or not (lq_dir / n).is_file()]
        if missing:
            raise InputError(
                f"{meta_info} names {len(missing)} images missing from {gt_dir} or {lq_dir} "
                f"(first: {', '.join(missing[:3])})."
            )
    else:
        names = sorted(p.name for p in gt_dir.iterdir() if p.is_file() and is_image_path(p))
        missing = [n for n in names if not (lq_dir / n).is_file()]
        if missing:
            raise InputError(
                f"{gt_dir}: {len(missing)} files have no file of the same name in {lq_dir} "
                f"(first: {', '.join(missing[:3])})."
            )
    if not names:
        raise InputError(f"{gt_dir}: no images.")
    pairs = []
    for n in names:
        sid = decode_name(PurePosixPath(n).stem)
        pairs.append(LayoutPair(sid, sid.split("/", 1)[0], lq_dir / n, gt_dir / n))
    used = set(names)
    unmatched = sorted(
        f"{d.name}/{p.name}" for d in (lq_dir, gt_dir) for p in d.iterdir()
        if p.is_file() and is_image_path(p) and p.name not in used
    )
    return Layout(pairs, unmatched)
