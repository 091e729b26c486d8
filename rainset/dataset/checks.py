"""``check``: every problem of a dataset folder, as :class:`Problem` lines; and ``image_size``."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rainset.dataset import layout
from rainset.dataset.jsonl import scan_jsonl
from rainset.dataset.layout import JPG, MANIFEST, META, PAIRS, PNG
from rainset.dataset.rules import (
    SplitRule,
    _counts,
    _image_refs,
    _meta_errors,
    _pair_errors,
    _record_errors,
    hash_source,
)
from rainset.errors import InputError
from rainset.fsutil import stale_temp_files
from rainset.inputs import recorded_paths


@dataclass(frozen=True)
class Problem:
    """One problem found by :func:`check`: a file relative to the root, a 1-based line or None."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}{'' if self.line is None else f':{self.line}'}: {self.message}"


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


def _jpeg_size(f) -> tuple[int, int] | None:
    """(H, W) from the first start-of-frame marker, reading only the headers."""
    if f.read(2) != b"\xff\xd8":
        return None
    while True:
        b = f.read(1)
        while b and b != b"\xff":
            b = f.read(1)
        while b == b"\xff":
            b = f.read(1)
        if not b:
            return None
        m = b[0]
        if m == 0x01 or 0xD0 <= m <= 0xD8:  # markers without a length
            continue
        if m in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        seg = f.read(2)
        if len(seg) < 2:
            return None
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
            d = f.read(5)
            return (
                None
                if len(d) < 5
                else (int.from_bytes(d[1:3], "big"), int.from_bytes(d[3:5], "big"))
            )
        f.seek(int.from_bytes(seg, "big") - 2, 1)


def image_size(path: str | os.PathLike, *, decode: bool = True) -> tuple[int, int]:
    """(H, W) of an image file.

    ``decode=True`` decodes the whole image (catching truncated files); ``decode=False`` reads
    only the PNG or JPEG header (other formats are decoded).

    Raises
    ------
    InputError
        Missing, unreadable or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: does not exist.")
    suffix = path.suffix.lower()
    if not decode and suffix in (PNG, JPG, ".jpeg"):
        with open(path, "rb") as f:
            size = _png_size(f.read(24)) if suffix == PNG else _jpeg_size(f)
        if size is None or 0 in size:
            raise InputError(f"{path}: not a readable {suffix[1:].upper()} header.")
        return size
    data = np.fromfile(path, dtype=np.uint8)
    from rainset._cvlog import opencv_quiet

    with opencv_quiet():  # a bad file is our one-line error, not OpenCV's log lines
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{path}: not a readable image (empty, truncated or unknown format).")
    if suffix in (JPG, ".jpeg") and bytes(data[-2:]) != b"\xff\xd9":
        # libjpeg pads a truncated JPEG with grey and only warns; the end marker tells.
        raise InputError(f"{path}: truncated JPEG (no end-of-image marker).")
    return int(img.shape[0]), int(img.shape[1])


def _sizes(root: Path, rels: Iterable[str], decode: bool, workers: int | None) -> dict:
    """relpath -> (H, W) or an error message; decoding runs on threads (OpenCV drops the GIL)."""

    def one(rel: str):
        try:
            return rel, image_size(root / rel, decode=decode)
        except (InputError, OSError) as exc:
            text = str(exc)
            prefix = f"{root / rel}: "
            return rel, (text[len(prefix) :] if text.startswith(prefix) else text).rstrip(".")

    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        return dict(pool.map(one, rels))


def check(
    root: str | os.PathLike,
    *,
    verify_hashes: bool = False,
    decode: bool = True,
    workers: int | None = None,
) -> list[Problem]:
    """Every problem found in a dataset; an empty list means it is sound.

    Parameters
    ----------
    root : the dataset folder.
    verify_hashes : rehash the sources recorded in ``rainset.json`` (at the resolved
        ``path``, else at ``relpath`` below ``root``; the dataset itself left out of a source
        folder that holds it) and report any that are missing or changed.
    decode : decode every image fully (catches truncated files); False reads PNG / JPEG
        headers only (much faster; still catches missing files and size mismatches).
    workers : threads for reading images (default: up to 8).

    Returns
    -------
    problems : list of Problem, ordered by file and line. Paths are relative to ``root``.

    Notes
    -----
    Checked: ``rainset.json`` exists, parses, is of a supported version and complete, and its
    counts agree with the files; every manifest line is a JSON object with the required keys,
    a unique id and a known split; no scene sits in two splits; every referenced image exists
    and reads, and all images of a record share its rainy (or frame) height and width; every
    pair names two different existing frames of one scene, with a unique id and the scene's
    split; scenes the split rule names as test have records.
    """
    root = Path(root)
    meta_path = layout.meta_path(root)
    if not meta_path.is_file():
        return [Problem(META, None, f"missing: {root} is not a rainset dataset")]
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [Problem(META, None, f"not valid JSON ({exc})")]
    errs, fatal = _meta_errors(meta)
    problems = [Problem(META, None, e) for e in errs]
    if fatal:
        return problems
    kind = meta["kind"]
    if meta.get("complete") is not True:
        problems.append(
            Problem(META, None, "unfinished: its writer did not close; rerun it to resume")
        )
    for tmp in stale_temp_files(root):
        rel = tmp.relative_to(root).as_posix()
        msg = "temporary file left by an interrupted write; a rerun of the command removes it"
        problems.append(Problem(rel, None, msg))
    records = _check_manifest(root, kind, problems)
    scene_split = {rec["scene"]: rec["split"] for _, rec in reversed(records)}  # first wins
    _check_images(root, kind, records, decode, workers, problems)
    n_pairs = _check_pairs(root, kind, records, scene_split, problems)
    _check_meta_against(meta, records, n_pairs, verify_hashes, problems, root)
    if meta.get("complete") is True and not records and layout.manifest_path(root).is_file():
        if not any(p.path == MANIFEST for p in problems):
            problems.append(Problem(MANIFEST, None, "no samples: the dataset is empty"))
    order = {META: 0, MANIFEST: 1, PAIRS: 2}
    problems.sort(key=lambda p: (order.get(p.path, 3), p.path, p.line or 0))
    return problems


def _check_manifest(root: Path, kind: str, problems: list[Problem]) -> list[tuple[int, dict]]:
    """Line-level problems, duplicate ids and scene leaks; returns the well-formed records."""
    if not layout.manifest_path(root).is_file():
        problems.append(Problem(MANIFEST, None, "missing"))
        return []
    scan = scan_jsonl(layout.manifest_path(root))
    problems += [Problem(MANIFEST, n, why) for n, why in scan.errors]
    records, first_line, scene_splits = [], {}, {}
    for n, rec in scan.records:
        bad = _record_errors(kind, rec)
        problems += [Problem(MANIFEST, n, e) for e in bad]
        if bad:
            continue
        records.append((n, rec))
        sid = rec["id"]
        if sid in first_line:
            msg = f"duplicate id {sid!r} (first on line {first_line[sid]})"
            problems.append(Problem(MANIFEST, n, msg))
        first_line.setdefault(sid, n)
        scene_splits.setdefault(rec["scene"], {}).setdefault(rec["split"], n)
    for scene, splits in scene_splits.items():
        if len(splits) > 1:
            where = ", ".join(f"{s} (line {n})" for s, n in splits.items())
            msg = f"scene {scene!r} leaks across splits: {where}"
            problems.append(Problem(MANIFEST, max(splits.values()), msg))
    return records


def _check_images(root, kind, records, decode, workers, problems) -> None:
    """Every referenced image exists and reads; a record's images share one height and width."""
    rels = {v for _, rec in records for _, v in _image_refs(kind, rec)}
    sizes = _sizes(root, sorted(rels), decode, workers)
    for n, rec in records:
        refs = _image_refs(kind, rec)
        ref_key, ref_rel = refs[0]
        ref_size = sizes[ref_rel]
        for key, rel in refs:
            size = sizes[rel]
            if isinstance(size, str):
                problems.append(Problem(MANIFEST, n, f"{key} {rel!r}: {size}"))
            elif key != ref_key and not isinstance(ref_size, str) and size != ref_size:
                msg = (
                    f"{key} {rel!r} is {size[0]}x{size[1]} (HxW) but {ref_key} {ref_rel!r} "
                    f"is {ref_size[0]}x{ref_size[1]}"
                )
                problems.append(Problem(MANIFEST, n, msg))


def _check_pairs(root, kind, records, scene_split, problems) -> int:
    """Problems of ``pairs.jsonl``; returns the number of well-formed pairs."""
    path = layout.pairs_path(root)
    if not path.exists():
        return 0
    if kind != "timelapse":
        problems.append(Problem(PAIRS, None, f"a {kind} dataset has no pairs file"))
        return 0
    frame_scene = {rec["id"]: rec["scene"] for _, rec in records}
    scan = scan_jsonl(path)
    problems += [Problem(PAIRS, n, why) for n, why in scan.errors]
    seen: dict[str, int] = {}
    n_pairs = 0
    for n, rec in scan.records:
        bad = _pair_errors(rec)
        problems += [Problem(PAIRS, n, e) for e in bad]
        if bad:
            continue
        n_pairs += 1
        pid, a, b = rec["id"], rec["a"], rec["b"]
        msgs = []
        if pid in seen:
            msgs.append(f"duplicate pair id {pid!r} (first on line {seen[pid]})")
        seen.setdefault(pid, n)
        missing = [f for f in (a, b) if f not in frame_scene]
        msgs += [
            f"pair {pid!r} names frame {f!r}, which is not in {MANIFEST}" for f in missing
        ]
        if a == b:
            msgs.append(f"pair {pid!r} pairs frame {a!r} with itself")
        if not missing:
            sa, sb = frame_scene[a], frame_scene[b]
            if sa != sb:
                msgs.append(f"pair {pid!r} joins frames of scenes {sa!r} and {sb!r}")
            elif rec["scene"] != sa:
                msgs.append(f"pair {pid!r} says scene {rec['scene']!r} but its frames are {sa!r}")
            if rec.get("split") != scene_split[sa]:
                msgs.append(
                    f"pair {pid!r} has split {rec.get('split')!r}, its scene {scene_split[sa]!r}"
                )
        problems += [Problem(PAIRS, n, m) for m in msgs]
    return n_pairs


def _check_meta_against(meta, records, n_pairs, verify_hashes, problems, root=None) -> None:
    """Counts, named test scenes and (optionally) source hashes against what is on disk."""
    per_split = Counter(rec["split"] for _, rec in records)
    per_scene = Counter(rec["scene"] for _, rec in records)
    if meta.get("complete") is True and isinstance(meta.get("counts"), dict):
        for key, value in _counts(len(records), per_split, per_scene, n_pairs).items():
            if meta["counts"].get(key) != value:
                msg = f"counts.{key} is {meta['counts'].get(key)!r} but the files hold {value!r}"
                problems.append(Problem(META, None, msg))
    try:
        test_scenes = SplitRule.from_json(meta["split_rule"]).test_scenes
    except (TypeError, ValueError):
        test_scenes = ()  # already reported
    for scene in test_scenes:
        if scene not in per_scene:
            msg = f"split_rule names test scene {scene!r} but no record has it"
            problems.append(Problem(META, None, msg))
    if not verify_hashes:
        return
    sources = meta.get("sources")
    for src in sources if isinstance(sources, list) else []:
        if not isinstance(src, dict) or not {"path", "sha256"} <= set(src):
            continue  # already reported
        places = [q for q in recorded_paths(src, root) if q.exists()]
        try:
            digest = hash_source(places[0], exclude=(root,)) if places else None
            for q in places[1:]:
                if digest == src["sha256"]:
                    break
                digest = hash_source(q, exclude=(root,))
        except OSError:
            digest = None
        if digest is None:
            msg = f"source {src['path']!r} not found; cannot verify its sha256"
            problems.append(Problem(META, None, msg))
            continue
        if digest != src["sha256"]:
            msg = f"source {src['path']!r} changed: sha256 {digest}, recorded {src['sha256']}"
            problems.append(Problem(META, None, msg))
