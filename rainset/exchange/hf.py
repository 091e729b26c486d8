"""A Hugging Face ``datasets`` image folder with paired image columns and real splits.

``OUT/<split>/`` (``train``, ``val``, ``test``; ``datasets`` names ``val`` "validation") holds
the images and a ``metadata.jsonl`` whose ``*_file_name`` columns pair them, so
``datasets.load_dataset("imagefolder", data_dir=OUT)`` gives one ``Image`` column each:

- paired samples: ``rainy``, ``clean`` and, when every sample has one, ``mask`` and
  ``rain_map``; a clean image shared by several samples is stored once;
- time-lapse datasets with pairs: one row per pair (m, n), ``frame_a``, ``frame_b``, their
  foreground masks ``mask_a``, ``mask_b`` and the segment's ``clean`` where present;

and the labels (``scene``, ``source``, ``p_hat``, rain angle and density, ...) as plain scalar
columns (:func:`~rainset.exchange._common.label_fields`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Literal

from rainset.dataset import Dataset
from rainset.exchange._common import (
    ExportResult,
    NameTable,
    Placer,
    clean_up_refusals,
    close_output,
    encode_name,
    frame_pairs,
    group_names,
    label_fields,
    open_checked,
    open_output,
    paired_samples,
    progress_iter,
    selected_splits,
    uniform_columns,
)
from rainset.fsutil import atomic_write_text

__all__ = ["export_hf"]

METADATA_NAME = "metadata.jsonl"


@clean_up_refusals
def export_hf(
    dataset: str | os.PathLike | Dataset,
    out: str | os.PathLike,
    *,
    split: str = "all",
    link: Literal["symlink", "hardlink", "copy"] | None = None,
    progress=None,
) -> ExportResult:
    """Export a dataset as a Hugging Face image folder; rerunning resumes.

    Parameters
    ----------
    dataset, out, split, link, progress : as :func:`rainset.exchange.export_basicsr`.

    Returns
    -------
    ExportResult
    """
    ds = open_checked(dataset)
    splits = selected_splits(ds, split)
    resumed = open_output(out, ds, "hf", {"split": split})
    out = Path(out)
    placer = Placer(link)
    result = ExportResult(out, "hf", resumed=resumed)
    pair_mode = frame_pairs(ds) > 0
    rows_by_split = {}
    dropped: set[str] = set()
    for sp in splits:
        if pair_mode:
            rows = _pair_rows(ds, sp, out / sp, placer, dropped, progress)
        else:
            rows = _sample_rows(ds, sp, out / sp, placer, dropped, progress)
        rows_by_split[sp] = rows
    # Columns every split shares (features must agree between splits).
    all_rows = [r for rows in rows_by_split.values() for r in rows]
    file_cols = {k for r in all_rows for k in r if k.endswith("_file_name")}
    partial = sorted(k for k in file_cols if not all(k in r for r in all_rows))
    for k in partial:
        n = sum(k in r for r in all_rows)
        result.notes.append(
            f"{k[: -len('_file_name')]} left out: only {n} of {len(all_rows)} rows have one."
        )
        for r in all_rows:
            r.pop(k, None)
    made_text = uniform_columns(all_rows)
    if made_text:
        result.notes.append(f"columns of mixed types written as text: {', '.join(made_text)}.")
    if dropped:
        result.notes.append(
            f"fields holding lists or objects are not columns: {', '.join(sorted(dropped))}."
        )
    for sp, rows in rows_by_split.items():
        text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
        atomic_write_text(out / sp / METADATA_NAME, text)
        result.counts[sp] = len(rows)
        result.files.append(f"{sp}/{METADATA_NAME}")
    if ds.kind == "timelapse" and not pair_mode:
        result.notes.append("the time-lapse dataset has no frame pairs; frames were written "
                            "with their pseudo ground truth.")
    result.notes += placer.notes
    close_output(out, {"counts": result.counts, "files": result.files})
    return result


def _put(placer: Placer, table: NameTable, ds: Dataset, rel: str, folder: Path, sub: str,
         stem: str) -> str:
    """Place dataset file ``rel`` at ``folder/sub/stem.EXT``; returns the name below folder."""
    name = f"{sub}/{stem}{PurePosixPath(rel).suffix.lower()}"
    if table.claim(name, rel):
        placer.place(ds.path(rel), folder / name)
    return name


def _sample_rows(ds, sp, folder, placer, dropped, progress) -> list[dict]:
    table = NameTable()
    samples = paired_samples(ds, sp)
    groups = group_names(sorted({s.clean for s in samples}))
    rows = []
    for s in progress_iter(samples, progress):
        stem = encode_name(s.id)
        row = {"id": s.id, "scene": s.scene}
        row["rainy_file_name"] = _put(placer, table, ds, s.rainy, folder, "rainy", stem)
        row["clean_file_name"] = _put(placer, table, ds, s.clean, folder, "clean", groups[s.clean])
        for key, rel in (("mask", s.mask), ("rain_map", s.rain_map)):
            if rel is not None:
                row[f"{key}_file_name"] = _put(placer, table, ds, rel, folder, key, stem)
        skip = frozenset({"frame"}) if ds.kind == "timelapse" else frozenset()
        labels, lost = label_fields(s.record, skip=skip)
        dropped.update(lost)
        row.update({k: v for k, v in labels.items() if k not in row})
        rows.append(row)
    return rows


def _pair_rows(ds, sp, folder, placer, dropped, progress) -> list[dict]:
    table = NameTable()
    pairs = list(ds.pairs(split=sp))
    frames = {r["id"]: r for r in ds.samples(split=sp)}
    groups = group_names(sorted({r["clean"] for r in frames.values() if "clean" in r}))
    rows = []
    for p in progress_iter(pairs, progress):
        a, b = frames[p["a"]], frames[p["b"]]
        row = {"id": p["id"], "scene": p["scene"], "a": p["a"], "b": p["b"]}
        for tag, f in (("a", a), ("b", b)):
            stem = encode_name(f["id"])
            row[f"frame_{tag}_file_name"] = _put(placer, table, ds, f["frame"], folder, "frames",
                                                 stem)
            if "mask" in f:
                row[f"mask_{tag}_file_name"] = _put(placer, table, ds, f["mask"], folder,
                                                    "masks", stem)
            row[f"index_{tag}"] = f["index"]
        if "clean" in a:
            row["clean_file_name"] = _put(placer, table, ds, a["clean"], folder, "clean",
                                          groups[a["clean"]])
        labels, lost = label_fields(p, skip=frozenset({"a", "b"}))
        dropped.update(lost)
        row.update({k: v for k, v in labels.items() if k not in row})
        rows.append(row)
    return rows
