"""WebDataset tar shards: ``OUT/<split>-000000.tar``, ``OUT/<split>-000001.tar``, ...

Each sample is a group of tar members sharing a key: ``KEY.rainy.png``, ``KEY.clean.png``,
``KEY.mask.png`` and ``KEY.rain_map.png`` where the sample has them, and ``KEY.json`` (id,
scene, split and the labels). A time-lapse dataset with frame pairs writes one group per pair:
``KEY.frame_a.png``, ``KEY.frame_b.png``, ``KEY.mask_a.png``, ``KEY.mask_b.png``, the
segment's ``KEY.clean.png`` where present, and ``KEY.json``. WebDataset cuts a member name at
its first dot, so ``KEY`` is the id with dots (and ``/``) escapes
(:func:`~rainset.exchange._common.encode_name`); the image extension is the stored file's
(``.jpg`` stays ``.jpg``; bytes are copied, never re-encoded). Each shard is written under a
temporary name and renamed when whole, so a resumed export skips the shards that exist.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path, PurePosixPath

from rainset.dataset import Dataset
from rainset.errors import ParameterError
from rainset.exchange._common import (
    ExportResult,
    NameTable,
    clean_up_refusals,
    close_output,
    encode_name,
    frame_pairs,
    label_fields,
    open_checked,
    open_output,
    paired_samples,
    selected_splits,
)
from rainset.fsutil import atomic_path

__all__ = ["export_webdataset", "parse_shard_size", "DEFAULT_SHARD_SIZE"]

#: Samples per shard unless ``shard_size`` says otherwise.
DEFAULT_SHARD_SIZE = 1000


def parse_shard_size(value: str | int) -> tuple[int | None, int | None]:
    """``"1000"`` -> (1000 samples, None); ``"100MB"`` -> (None, 100 * 2**20 bytes).

    Raises
    ------
    ParameterError
        Not a positive number of samples or of ``KB``/``MB``/``GB``.
    """
    text = str(value).strip().upper()
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    for unit, scale in units.items():
        if text.endswith(unit):
            try:
                n = float(text[: -len(unit)])
            except ValueError:
                break
            if n > 0 and n * scale >= 1:
                return None, int(n * scale)
            break
    else:
        if text.isdigit() and int(text) > 0:
            return int(text), None
    raise ParameterError(
        "shard_size", f"must be a number of samples (1000) or of MB (100MB), got {value!r}"
    )


@clean_up_refusals
def export_webdataset(
    dataset: str | os.PathLike | Dataset,
    out: str | os.PathLike,
    *,
    split: str = "all",
    shard_size: str | int = DEFAULT_SHARD_SIZE,
    progress=None,
) -> ExportResult:
    """Export a dataset as WebDataset tar shards; rerunning resumes.

    Parameters
    ----------
    dataset, out, split, progress : as :func:`rainset.exchange.export_basicsr`.
    shard_size : samples per shard (``1000``) or bytes of images per shard (``"100MB"``); a
        shard holds at least one sample.

    Returns
    -------
    ExportResult
    """
    max_n, max_bytes = parse_shard_size(shard_size)
    ds = open_checked(dataset)
    splits = selected_splits(ds, split)
    resumed = open_output(out, ds, "webdataset", {"split": split, "shard_size": str(shard_size)})
    out = Path(out)
    result = ExportResult(out, "webdataset", resumed=resumed)
    pair_mode = frame_pairs(ds) > 0
    for sp in splits:
        groups = _pair_groups(ds, sp) if pair_mode else _sample_groups(ds, sp)
        shards, current, size = [], [], 0
        for g in groups:
            g_size = sum(os.path.getsize(p) for _, p in g[1])
            full = (max_n is not None and len(current) >= max_n) or (
                max_bytes is not None and current and size + g_size > max_bytes
            )
            if full:
                shards.append(current)
                current, size = [], 0
            current.append(g)
            size += g_size
        if current:
            shards.append(current)
        done = 0
        for i, shard in enumerate(shards):
            name = f"{sp}-{i:06d}.tar"
            if not (out / name).is_file():
                _write_shard(out / name, shard)
            result.files.append(name)
            for _ in shard:
                done += 1
                if progress is not None:
                    progress(done, len(groups))
        result.counts[sp] = len(groups)
    close_output(out, {"counts": result.counts, "files": result.files})
    return result


_Group = tuple[str, list[tuple[str, Path]], dict]  # key, [(member suffix, file)], json


def _sample_groups(ds: Dataset, sp: str) -> list[_Group]:
    table = NameTable()
    groups = []
    for s in paired_samples(ds, sp):
        key = encode_name(s.id, escape_dots=True)
        table.claim(key, s.id)
        files = [("rainy", s.rainy), ("clean", s.clean), ("mask", s.mask),
                 ("rain_map", s.rain_map)]
        members = [
            (f"{tag}{PurePosixPath(rel).suffix.lower()}", ds.path(rel))
            for tag, rel in files
            if rel is not None
        ]
        labels, _ = label_fields(s.record, skip=frozenset({"frame"}) if ds.kind == "timelapse"
                                 else frozenset())
        meta = {"id": s.id, "scene": s.scene, "split": s.split, **labels}
        if isinstance(s.record.get("labels"), dict):
            meta["labels"] = s.record["labels"]
        groups.append((key, members, meta))
    return groups


def _pair_groups(ds: Dataset, sp: str) -> list[_Group]:
    table = NameTable()
    frames = {r["id"]: r for r in ds.samples(split=sp)}
    groups = []
    for p in ds.pairs(split=sp):
        key = encode_name(p["id"], escape_dots=True)
        table.claim(key, p["id"])
        a, b = frames[p["a"]], frames[p["b"]]
        members = []
        for tag, f in (("a", a), ("b", b)):
            members.append((f"frame_{tag}{PurePosixPath(f['frame']).suffix.lower()}",
                            ds.path(f["frame"])))
            if "mask" in f:
                members.append((f"mask_{tag}{PurePosixPath(f['mask']).suffix.lower()}",
                                ds.path(f["mask"])))
        if "clean" in a:
            members.append((f"clean{PurePosixPath(a['clean']).suffix.lower()}",
                            ds.path(a["clean"])))
        labels, _ = label_fields(p, skip=frozenset({"a", "b"}))
        meta = {"id": p["id"], "scene": p["scene"], "split": p["split"], "a": p["a"],
                "b": p["b"], "index_a": a["index"], "index_b": b["index"], **labels}
        groups.append((key, members, meta))
    return groups


def _write_shard(path: Path, shard: list[_Group]) -> None:
    with atomic_path(path) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for key, members, meta in shard:
                for suffix, src in members:
                    # A plain member (never a link), owner-less and dated 0: the same dataset
                    # gives the same shard bytes.
                    info = tarfile.TarInfo(f"{key}.{suffix}")
                    info.size, info.mode = os.path.getsize(src), 0o644
                    with open(src, "rb") as f:
                        tar.addfile(info, f)
                data = json.dumps(meta, ensure_ascii=False, allow_nan=False).encode("utf-8")
                info = tarfile.TarInfo(f"{key}.json")
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
