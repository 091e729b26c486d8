"""The one on-disk dataset format every rainset pipeline writes: write, read, check.

A dataset is a folder holding ``rainset.json`` (what it is and how it was made),
``manifest.jsonl`` (one JSON record a line) and image folders; a time-lapse dataset adds
``pairs.jsonl``. Every path inside a record is relative to the folder, with ``/`` separators.
The specification, with examples, is ``docs/format.md``; this module is its reference
implementation.

Kinds
-----
``paired``
    One sample a line: ``id, scene, split, rainy, clean`` and optionally ``mask, rain_map,
    residual, tiers, semantic, window, frame, labels`` and any other JSON field.
``timelapse``
    One frame a line: ``id, scene, split, frame, index`` and optionally ``mask`` (foreground)
    and ``clean`` (pseudo ground truth of the frame's segment, shared by its frames);
    ``pairs.jsonl`` holds ``id, scene, split, a, b`` with ``a``, ``b`` frame ids.

Splits are by scene, never by frame (:class:`SplitRule`). The writer appends one fsync'd line
per record, so an interrupted run loses at most the line being written, and reopening the
folder resumes it (:class:`DatasetWriter`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import cv2
import numpy as np

import rainset
from rainset._checks import require_finite
from rainset.errors import FormatError, InputError, ParameterError
from rainset.fsutil import (
    atomic_write_text,
    stale_temp_files,
)
from rainset.image import IMAGE_SUFFIXES, read_image, write_image
from rainset.inputs import hash_tree, recorded_paths
from rainset.lock import FolderLock

logger = logging.getLogger(__name__)

#: The format version this module writes and the newest it reads.
FORMAT_VERSION = 1
#: Split names a record may carry. ``val`` is empty unless a :class:`SplitRule` asks for it.
SPLITS = ("train", "val", "test")
#: Dataset kinds.
#: ``clean`` holds clean images only (pseudo ground truth for evaluation, ``build-gt --write clean``).
KINDS = ("paired", "timelapse", "clean")
META_NAME = "rainset.json"
MANIFEST_NAME = "manifest.jsonl"
PAIRS_NAME = "pairs.jsonl"

_REQUIRED = {
    "paired": ("id", "scene", "rainy", "clean"),
    "timelapse": ("id", "scene", "frame", "index"),
    "clean": ("id", "scene", "clean"),
}
# Keys holding one relative image path; the first is the record's reference size.
_PATH_KEYS = {
    "paired": ("rainy", "clean", "mask", "rain_map", "residual", "semantic"),
    "timelapse": ("frame", "clean", "mask"),
    "clean": ("clean",),
}
_PAIR_REQUIRED = ("id", "scene", "a", "b")


# ----------------------------------------------------------------------------- split rule


def scene_unit(scene: str, salt: str = "rainset") -> float:
    """A scene's stable position in [0, 1): the first 8 bytes of ``sha256(salt + "/" + scene)``.

    The same on every machine and in every process (Python's ``hash()`` is salted per process).
    """
    digest = hashlib.sha256(f"{salt}/{scene}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class SplitRule:
    """How scenes are assigned to splits; every frame of a scene lands in the scene's split.

    Parameters
    ----------
    test_scenes : scene ids that form the test split exactly (``--test-scenes``). When given,
        ``test_fraction`` is ignored.
    test_fraction : without ``test_scenes``, a scene is test when ``scene_unit(scene, salt) <
        test_fraction``.
    salt : mixed into the hash; a different salt gives a different, equally stable split.
    val_scenes : scene ids that form the validation split exactly.
    val_fraction : without ``val_scenes``, a scene is val when its unit falls in the next
        ``val_fraction`` after the test band (``[test_fraction, test_fraction + val_fraction)``,
        or ``[0, val_fraction)`` when ``test_scenes`` is given). Default 0: no val split.
    """

    test_scenes: tuple[str, ...] = ()
    test_fraction: float = 0.2
    salt: str = "rainset"
    val_scenes: tuple[str, ...] = ()
    val_fraction: float = 0.0

    def __post_init__(self) -> None:
        for name in ("test_scenes", "val_scenes"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(s, str) for s in value):
                raise ParameterError(name, f"must be a sequence of scene ids, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("test_fraction", "val_fraction"):
            require_finite(name, getattr(self, name))
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ParameterError(name, f"must be in [0, 1], got {getattr(self, name)}")
        if self.test_fraction + self.val_fraction > 1.0:
            raise ParameterError(
                "val_fraction",
                f"test_fraction + val_fraction must be <= 1, got "
                f"{self.test_fraction} + {self.val_fraction}"
            )
        both = set(self.test_scenes) & set(self.val_scenes)
        if both:
            raise ParameterError("val_scenes", f"scenes named both test and val: {sorted(both)}")

    def split_of(self, scene: str) -> str:
        """The split (``"train"``, ``"val"`` or ``"test"``) of ``scene``."""
        if scene in self.test_scenes:
            return "test"
        if scene in self.val_scenes:
            return "val"
        u = scene_unit(scene, self.salt)
        lo = 0.0
        if not self.test_scenes:
            if u < self.test_fraction:
                return "test"
            lo = self.test_fraction
        if not self.val_scenes and lo <= u < lo + self.val_fraction:
            return "val"
        return "train"

    def to_json(self) -> dict:
        """The rule as the ``split_rule`` object of ``rainset.json``."""
        return {
            "test_scenes": list(self.test_scenes),
            "test_fraction": float(self.test_fraction),
            "val_scenes": list(self.val_scenes),
            "val_fraction": float(self.val_fraction),
            "salt": self.salt,
        }

    @classmethod
    def from_json(cls, data: dict) -> SplitRule:
        """Inverse of :meth:`to_json`; ``ValueError`` on a malformed object."""
        if not isinstance(data, dict):
            raise ValueError(f"split_rule must be an object, got {data!r}")
        fields = {"test_scenes", "test_fraction", "val_scenes", "val_fraction", "salt"}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"split_rule has unknown fields {sorted(unknown)}")
        return cls(**data)


# ----------------------------------------------------------------------------- helpers


def hash_source(path: str | os.PathLike, *, exclude: Iterable[str | os.PathLike] = ()) -> str:
    """sha256 of a source: a file's bytes, or for a folder the sha256 of the text made of one
    line ``"<relative posix path>\\t<file sha256>\\n"`` per file below it, sorted by path;
    subtrees in ``exclude`` (a dataset written inside the folder) are left out."""
    return hash_tree(path, exclude=exclude)


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to the dataset ``root`` (``..`` where needed), ``/``-separated."""
    try:
        return Path(os.path.relpath(path, os.path.realpath(root))).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()


def _relpath_error(value: Any) -> str | None:
    """Why ``value`` is not a usable relative path inside a dataset, or None."""
    if not isinstance(value, str) or not value:
        return f"must be a non-empty relative path string, got {value!r}"
    p = PurePosixPath(value)
    if "\\" in value or p.is_absolute() or ".." in p.parts or value[1:2] == ":":
        return f"must be a relative '/'-separated path inside the dataset, got {value!r}"
    return None


def _image_refs(kind: str, rec: dict) -> list[tuple[str, Any]]:
    """(key, value) of every image a record references; tiers appear as ``tiers.<name>``."""
    refs = [(k, rec[k]) for k in _PATH_KEYS[kind] if k in rec]
    tiers = rec.get("tiers") if kind == "paired" else None
    if isinstance(tiers, dict):
        refs += [(f"tiers.{name}", v) for name, v in tiers.items()]
    return refs


def _record_errors(kind: str, rec: Any) -> list[str]:
    """Structural problems of one manifest record (not touching the disk)."""
    if not isinstance(rec, dict):
        return [f"a record must be a JSON object, got {type(rec).__name__}"]
    errs = [f"missing required key {k!r}" for k in (*_REQUIRED[kind], "split") if k not in rec]
    for key in ("id", "scene"):
        if key in rec and (not isinstance(rec[key], str) or not rec[key]):
            errs.append(f"{key} must be a non-empty string, got {rec[key]!r}")
    if "split" in rec and rec["split"] not in SPLITS:
        errs.append(f"unknown split {rec['split']!r} (expected one of {', '.join(SPLITS)})")
    if kind == "paired":
        for key in ("tiers", "labels"):
            if key in rec and not isinstance(rec[key], dict):
                errs.append(f"{key} must be an object, got {rec[key]!r}")
    elif "index" in rec and (not isinstance(rec["index"], int) or isinstance(rec["index"], bool)):
        errs.append(f"index must be an integer, got {rec['index']!r}")
    for key, value in _image_refs(kind, rec):
        msg = _relpath_error(value)
        if msg:
            errs.append(f"{key} {msg}")
    return errs


def _pair_errors(rec: Any) -> list[str]:
    if not isinstance(rec, dict):
        return [f"a pair must be a JSON object, got {type(rec).__name__}"]
    errs = [f"missing required key {k!r}" for k in _PAIR_REQUIRED if k not in rec]
    errs += [
        f"{k} must be a non-empty string, got {rec[k]!r}"
        for k in _PAIR_REQUIRED
        if k in rec and (not isinstance(rec[k], str) or not rec[k])
    ]
    return errs


@dataclass
class _Scan:
    """A JSONL file read whole: good objects, bad lines, and where its last line starts."""

    records: list[tuple[int, Any]]
    errors: list[tuple[int, str]]
    n_lines: int
    last_start: int  # byte offset of the last line
    newline_end: bool  # the file ends with "\n" (or is empty)


def _scan_jsonl(path: Path) -> _Scan:
    data = path.read_bytes()
    lines = data.split(b"\n")
    newline_end = lines[-1] == b""
    if newline_end:
        lines.pop()
    records, errors, offset, last_start = [], [], 0, 0
    for i, raw in enumerate(lines, start=1):
        last_start = offset
        offset += len(raw) + 1
        try:
            records.append((i, json.loads(raw)))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            reason = "empty line" if not raw.strip() else f"not valid JSON ({exc})"
            errors.append((i, reason))
    return _Scan(records, errors, len(lines), last_start, newline_end)


def _dumps(rec: dict) -> str:
    try:
        return json.dumps(rec, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"record is not JSON-serialisable: {exc}") from None


def _meta_errors(meta: Any) -> tuple[list[str], bool]:
    """Problems of a parsed ``rainset.json``, and whether they stop any further reading."""
    if not isinstance(meta, dict):
        return ["must hold a JSON object"], True
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return [f"format_version must be a positive integer, got {version!r}"], True
    if version > FORMAT_VERSION:
        return [
            f"format version {version} is newer than this rainset reads ({FORMAT_VERSION}); "
            "upgrade rainset"
        ], True
    if meta.get("kind") not in KINDS:
        return [f"kind must be one of {', '.join(KINDS)}, got {meta.get('kind')!r}"], True
    errs = []
    if meta.get("image_format") not in ("png", "jpg"):
        errs.append(f"image_format must be 'png' or 'jpg', got {meta.get('image_format')!r}")
    if not isinstance(meta.get("params"), dict):
        errs.append("params must be an object")
    try:
        SplitRule.from_json(meta.get("split_rule"))
    except (TypeError, ValueError) as exc:
        errs.append(f"split_rule is invalid ({exc})")
    sources = meta.get("sources")
    if not isinstance(sources, list) or not all(
        isinstance(s, dict) and {"path", "sha256", "note"} <= set(s) for s in sources
    ):
        errs.append("sources must be a list of {path, sha256, note} objects")
    if not isinstance(meta.get("counts"), dict):
        errs.append("counts must be an object")
    return errs, False


def _load_meta(root: Path) -> dict:
    path = root / META_NAME
    if not path.is_file():
        raise FormatError(f"{path} not found: {root} is not a rainset dataset.")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: not valid JSON ({exc}); run `rainset check`.") from None
    errs, _ = _meta_errors(meta)
    if errs:
        raise FormatError(f"{path}: {errs[0]}.")
    return meta


def _counts(n: int, per_split: Counter, per_scene: Counter, n_pairs: int) -> dict:
    return {
        "samples": n,
        "per_split": {s: per_split.get(s, 0) for s in SPLITS},
        "per_scene": dict(sorted(per_scene.items())),
        "pairs": n_pairs,
    }


# ----------------------------------------------------------------------------- writer


def store_image(
    root: str | os.PathLike,
    relpath: str,
    image: np.ndarray,
    *,
    image_format: str = "png",
    jpeg_quality: int = 95,
    lossless: bool = False,
) -> str:
    """Write one image of a dataset under ``root`` as :meth:`DatasetWriter.write_image` does.

    For code that writes a dataset's images outside the writer's process (worker processes);
    thread-safe. Returns the relative path with the extension used.
    """
    msg = _relpath_error(relpath)
    if msg:
        raise ValueError(f"relpath {msg}")
    if PurePosixPath(relpath).suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(
            f"relpath must have no image extension (the writer appends one), got {relpath!r}"
        )
    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * np.uint8(255)
    png = image_format == "png" or lossless or arr.ndim == 2 or arr.dtype == np.uint16
    rel = relpath + (".png" if png else ".jpg")
    write_image(Path(root) / rel, arr, quality=jpeg_quality)
    return rel


class DatasetWriter:
    """Write a dataset record by record; reopening an unfinished folder resumes it.

    Parameters
    ----------
    root : the dataset folder (created on the first write). When it already holds ``rainset.json`` the dataset is
        reopened: its manifest is loaded so :meth:`has` tells which ids are done, and new
        records are appended. A torn last line (a crash mid-write) is dropped; a bad line
        anywhere else raises :class:`FormatError`.
    kind : ``"paired"`` or ``"timelapse"``.
    params : the pipeline's parameters, JSON-serialisable; recorded in ``rainset.json``.
    split_rule : assigns each scene its split (records may also carry their own ``split``).
    image_format : ``"png"`` (lossless, default) or ``"jpg"`` for RGB images written through
        :meth:`write_image`; masks, single-channel maps and 16-bit images are always PNG.
    jpeg_quality : 1..100, used and recorded when ``image_format="jpg"``.
    tool : the command that writes the dataset, e.g. ``"rainset synth"``.

    Raises
    ------
    FormatError
        The folder holds a different dataset (kind, tool, params, image format or split rule
        differ), a damaged one, or one written by a newer rainset.

    Notes
    -----
    Use as a context manager. Nothing on disk changes until the first image or record is
    written: constructing the writer is also the check that the folder can take this dataset,
    and an exception before any write leaves the folder as it was (absent, or finished). A
    clean exit calls :meth:`close`, which writes the counts and ``"complete": true``; an
    exception after the first write leaves ``"complete": false`` so ``check`` reports the
    dataset as unfinished until a rerun completes it. Not thread-safe. While open (from
    entering the context or the first write to the close) the writer holds the folder's lease
    lock (:mod:`rainset.lock`): a second writer, in another process or on another machine
    sharing the storage, is refused with :class:`rainset.lock.LockedError` naming the holder.

    Examples
    --------
    >>> with DatasetWriter(out, kind="paired", params={"n": 100}) as w:  # doctest: +SKIP
    ...     for sid, scene, rainy, clean in items:
    ...         if w.has(sid):
    ...             continue
    ...         r = w.write_image(f"rainy/{scene}/{sid}", rainy)
    ...         c = w.write_image(f"clean/{scene}/{sid}", clean)
    ...         w.add({"id": sid, "scene": scene, "rainy": r, "clean": c})
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        kind: Literal["paired", "timelapse", "clean"],
        params: dict,
        split_rule: SplitRule = SplitRule(),
        image_format: Literal["png", "jpg"] = "png",
        jpeg_quality: int = 95,
        tool: str = "rainset <cmd>",
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if image_format not in ("png", "jpg"):
            raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
        if not 1 <= int(jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
        if not isinstance(split_rule, SplitRule):
            raise ValueError(f"split_rule must be a SplitRule, got {type(split_rule).__name__}")
        if not isinstance(params, dict):
            raise ValueError(f"params must be a dict, got {type(params).__name__}")
        self.root = Path(root)
        self.kind = kind
        self.params = json.loads(_dumps(params))  # as it will read back (tuples -> lists)
        self.split_rule = split_rule
        self.image_format = image_format
        self.jpeg_quality = int(jpeg_quality)  # recorded (and compared) only for "jpg"
        self.tool = tool
        self.image_ext = ".png" if image_format == "png" else ".jpg"
        self._ids: set[str] = set()
        self._scene_split: dict[str, str] = {}
        self._frame_scene: dict[str, str] = {}
        self._per_split: Counter = Counter()
        self._per_scene: Counter = Counter()
        self._pair_ids: set[str] = set()
        self._sources: list[dict] = []
        # Records of the manifest whose image files are gone (deleted after they were written):
        # id -> (0-based line index, line text). ``has`` says False so the pipeline writes
        # them again; ``add`` then keeps (or replaces) their line instead of appending.
        self._missing: dict[str, tuple[int, str]] = {}
        self._closed = False
        self._pairs_fh = None
        # One writer per folder (rainset.lock): a live holder is refused now, before the
        # folder is read; the lock is taken on entering the context or on the first write.
        self._lock = FolderLock(self.root)
        self._lock.check()
        meta_path = self.root / META_NAME
        if meta_path.exists():
            self._created = self._resume()
        else:
            if (self.root / MANIFEST_NAME).exists():
                raise FormatError(
                    f"{self.root / MANIFEST_NAME} exists without {META_NAME}: {self.root} holds "
                    "a damaged dataset; delete it or choose another output folder."
                )
            self._created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        # Nothing on disk changes until the first write (see _start): a run that fails before
        # writing anything leaves no folder behind, and a finished dataset stays finished.
        self._manifest_fh = None
        self._started = False
        # Temp files of atomic writes found now were left by a killed run (no writer of this
        # run has started); _start removes exactly these, never those of this run's workers.
        self._stale = stale_temp_files(self.root) if self.root.is_dir() else []

    def _start(self) -> None:
        """Create the folder, mark the dataset unfinished and open the manifest: once, on the
        first image or record written (or on a clean close with nothing written)."""
        if self._started:
            return
        self._lock.acquire()
        self._started = True
        if (self.root / META_NAME).exists():  # said on the first write, not on a refused run
            logger.info(
                "resuming %s: %d records, %d pairs", self.root, len(self._ids), len(self._pair_ids)
            )
        self.root.mkdir(parents=True, exist_ok=True)
        for tmp in self._stale:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                logger.warning(
                    "%s: removed %s, left by an interrupted write", self.root, tmp.relative_to(self.root)
                )
        self._write_meta(complete=False)
        self._manifest_fh = open(self.root / MANIFEST_NAME, "ab")
        if self.kind == "timelapse":
            self._pairs_fh = open(self.root / PAIRS_NAME, "ab")

    # -- resume

    def _identity(self) -> dict:
        return {
            "kind": self.kind,
            "tool": self.tool,
            "params": self.params,
            "image_format": self.image_format,
            "jpeg_quality": self._recorded_quality(),
            "split_rule": self.split_rule.to_json(),
        }

    def _recorded_quality(self) -> int | None:
        return self.jpeg_quality if self.image_format == "jpg" else None

    def _resume(self) -> str:
        from rainset.differences import differences

        meta = _load_meta(self.root)
        old = {k: meta.get(k) for k in self._identity()}
        new = self._identity()
        differ = [k for k in new if old[k] != new[k]]
        if differ:
            detail = differences(
                {k: old[k] for k in differ}, {k: new[k] for k in differ},
                name=lambda k: f"`{k.rsplit('.', 1)[-1]}`" if k.startswith("params.") else k,
            )  # fmt: skip
            raise FormatError(
                f"{self.root / META_NAME}: the folder holds a different dataset ({detail}); "
                "choose another output folder or delete this one."
            )
        self._sources = list(meta.get("sources", []))
        for lineno, rec in self._load_lines(self.root / MANIFEST_NAME):
            errs = _record_errors(self.kind, rec)
            if errs or rec["id"] in self._ids:
                why = errs[0] if errs else f"duplicate id {rec['id']!r}"
                raise FormatError(
                    f"{self.root / MANIFEST_NAME}: line {lineno}: {why}; run `rainset check`."
                )
            self._count(rec)
        self._find_missing()
        if self.kind == "timelapse":
            for lineno, rec in self._load_lines(self.root / PAIRS_NAME):
                errs = _pair_errors(rec)
                if errs or rec["id"] in self._pair_ids:
                    why = errs[0] if errs else f"duplicate pair id {rec['id']!r}"
                    raise FormatError(
                        f"{self.root / PAIRS_NAME}: line {lineno}: {why}; run `rainset check`."
                    )
                self._pair_ids.add(rec["id"])
        return str(meta.get("created"))

    def _find_missing(self) -> None:
        """Note the records whose image files no longer exist (see ``self._missing``)."""
        path = self.root / MANIFEST_NAME
        if not path.exists():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            rec = json.loads(line)
            gone = [v for _, v in _image_refs(self.kind, rec) if not (self.root / v).is_file()]
            if gone:
                logger.warning(
                    "%s: record %r lost %s; it will be written again", self.root, rec["id"], gone[0]
                )
                self._missing[rec["id"]] = (index, line)

    def _replace_line(self, index: int, line: str) -> None:
        """Replace manifest line ``index`` (a record written again differs from its old line)."""
        path = self.root / MANIFEST_NAME
        self._manifest_fh.close()
        lines = path.read_text(encoding="utf-8").splitlines()
        lines[index] = line
        atomic_write_text(path, "".join(x + "\n" for x in lines))
        self._manifest_fh = open(path, "ab")

    def _load_lines(self, path: Path) -> list[tuple[int, Any]]:
        """Records of a JSONL file; a torn last line is cut off the file, others raise."""
        if not path.exists():
            return []
        scan = _scan_jsonl(path)
        for lineno, why in scan.errors:
            if lineno != scan.n_lines:
                raise FormatError(f"{path}: line {lineno}: {why}; run `rainset check`.")
        if scan.errors:  # only the last line is bad: a write the crash cut short
            logger.warning("%s: dropping torn last line %d", path, scan.n_lines)
            with open(path, "r+b") as f:
                f.truncate(scan.last_start)
                os.fsync(f.fileno())
        elif not scan.newline_end:  # complete record whose newline never made it
            with open(path, "ab") as f:
                f.write(b"\n")
                os.fsync(f.fileno())
        return scan.records

    def _count(self, rec: dict) -> None:
        self._ids.add(rec["id"])
        self._scene_split.setdefault(rec["scene"], rec["split"])
        self._per_split[rec["split"]] += 1
        self._per_scene[rec["scene"]] += 1
        if self.kind == "timelapse":
            self._frame_scene[rec["id"]] = rec["scene"]

    # -- writing

    def ids(self) -> frozenset[str]:
        """Ids of every record written so far (including those found on reopening), less
        those whose image files have gone missing."""
        return frozenset(self._ids.difference(self._missing))

    def has(self, sample_id: str) -> bool:
        """True when a record with this id is in the manifest and its image files exist."""
        return sample_id in self._ids and sample_id not in self._missing

    def has_pair(self, pair_id: str) -> bool:
        """True when a pair with this id is already in ``pairs.jsonl``."""
        return pair_id in self._pair_ids

    def add_source(
        self,
        path: str | os.PathLike,
        *,
        note: str,
        sha256: str | None = None,
        scene: str | None = None,
    ) -> None:
        """Record a source (video, frame folder, image set) with its sha256 and a provenance note.

        Parameters
        ----------
        path : the source. Recorded resolved (``path``) and relative to the dataset folder
            (``relpath``), so ``check(verify_hashes=True)`` finds it from any working folder.
            A source already recorded (same resolved path and scene) is not hashed again (so
            resuming does not rehash large videos). A path that does not exist (a URL given
            with its ``sha256``) is recorded as given.
        note : licence and provenance, e.g. ``"own footage, CC BY 4.0"``.
        sha256 : give it when known; otherwise the file (or folder, see :func:`hash_source`,
            leaving out this dataset when it lies inside the folder) is hashed.
        scene : the scene id the source gives; recorded beside its sha256.

        Raises
        ------
        InputError
            ``scene`` is already recorded for a source with a different sha256 (another file
            with the same id).
        """
        exists = os.path.exists(path)  # else a name or URL given with its sha256: kept as is
        resolved = Path(os.path.realpath(os.fspath(path))) if exists else Path(os.fspath(path))
        for s in self._sources:
            if s.get("scene") == scene and (s["path"] == os.fspath(path) or any(
                os.path.realpath(q) == str(resolved) for q in recorded_paths(s, self.root)
            )):  # fmt: skip
                return
        digest = sha256 if sha256 is not None else hash_source(path, exclude=(self.root,))
        if scene is not None:
            for s in self._sources:
                if s.get("scene") == scene and s["sha256"] != digest:
                    raise InputError(
                        f"{s['path']} (recorded in {self.root}) and {path} both have scene id "
                        f"{scene!r} but different contents; give them different scene ids."
                    )
        rec = {"path": str(resolved) if exists else os.fspath(path)}
        if exists:
            rec["relpath"] = _relative(resolved, self.root)
        rec.update({"sha256": digest, "note": str(note)})
        if scene is not None:
            rec["scene"] = scene
        self._sources.append(rec)
        if self._started and not self._closed:  # on disk at once: a killed run keeps it
            self._write_meta(complete=False)

    def write_image(self, relpath: str, image: np.ndarray, *, lossless: bool = False) -> str:
        """Write an image under the dataset atomically and return its relative path.

        Parameters
        ----------
        relpath : path stem without extension, e.g. ``"rainy/street/w0/000012"``; the writer
            appends ``.png`` or ``.jpg``.
        image : (H, W, 3) uint8 RGB, (H, W) uint8 (labels, grey maps), (H, W) bool (a mask,
            stored as 0 / 255) or uint16 ndarray.
        lossless : force PNG for an RGB image in a JPEG dataset (rain maps, residuals).
            Bool, single-channel and 16-bit images are always PNG.

        Returns
        -------
        relpath : str, the stem plus the extension used; put it in the record.
        """
        self._require_open()
        self._start()
        return store_image(
            self.root,
            relpath,
            image,
            image_format=self.image_format,
            jpeg_quality=self.jpeg_quality,
            lossless=lossless,
        )

    def add(self, record: dict, *, sync: bool = True) -> None:
        """Append one record (a paired sample, or a time-lapse frame) to the manifest.

        ``split`` is filled from the scene by the split rule when absent. The referenced
        images must already exist. The line is flushed and fsync'd before this returns
        (``sync=False``: flushed only; :meth:`sync` fsyncs a batch, as a merge does per shard).

        Raises
        ------
        ValueError
            A required key is missing, a value has the wrong type, a referenced image does not
            exist, the id is already present, or the scene is already in another split.
        """
        self._require_open()
        if not isinstance(record, dict):
            raise ValueError(f"record must be a dict, got {type(record).__name__}")
        rec = dict(record)
        if isinstance(rec.get("scene"), str) and "split" not in rec:
            rec["split"] = self.split_rule.split_of(rec["scene"])
        errs = _record_errors(self.kind, rec)
        if errs:
            raise ValueError(f"record {rec.get('id')!r}: {'; '.join(errs)}")
        if rec["id"] in self._ids and rec["id"] not in self._missing:
            raise ValueError(f"duplicate id {rec['id']!r}: the manifest already has it")
        have = self._scene_split.get(rec["scene"])
        if have is not None and have != rec["split"]:
            raise ValueError(
                f"record {rec['id']!r}: scene {rec['scene']!r} is already in split {have!r}, "
                f"not {rec['split']!r}; a scene sits in one split"
            )
        for key, value in _image_refs(self.kind, rec):
            if not (self.root / value).is_file():
                raise ValueError(f"record {rec['id']!r}: {key} {value!r} does not exist")
        ordered = {k: rec.pop(k) for k in ("id", "scene", "split")}
        ordered.update(rec)
        line = _dumps(ordered)
        self._start()
        if ordered["id"] in self._missing:  # written again after its files were lost
            index, old = self._missing.pop(ordered["id"])
            if line != old:
                self._replace_line(index, line)
            return
        self._append(self._manifest_fh, line, sync=sync)
        self._count(ordered)

    def add_pair(self, record: dict, *, sync: bool = True) -> None:
        """Append a frame pair ``{"id", "scene", "a", "b"}`` to ``pairs.jsonl`` (timelapse only).

        ``a`` and ``b`` are frame ids already added, of one scene, and different. ``scene``
        defaults to theirs, ``id`` to ``"<a>|<b>"``; ``split`` is the scene's split.
        ``sync=False`` skips the fsync (:meth:`add_pairs` syncs once per batch).
        """
        self._require_open()
        if self.kind != "timelapse":
            raise ValueError("add_pair is for timelapse datasets; this one is paired")
        if not isinstance(record, dict):
            raise ValueError(f"pair must be a dict, got {type(record).__name__}")
        rec = dict(record)
        a, b = rec.get("a"), rec.get("b")
        for name, fid in (("a", a), ("b", b)):
            if fid not in self._frame_scene:
                raise ValueError(f"pair {rec.get('id')!r}: {name}={fid!r} is not a frame id")
        if a == b:
            raise ValueError(f"pair {rec.get('id')!r}: a and b are the same frame {a!r}")
        scene = self._frame_scene[a]
        if self._frame_scene[b] != scene:
            raise ValueError(
                f"pair {rec.get('id')!r}: frames {a!r} and {b!r} are of different scenes"
            )
        rec.setdefault("id", f"{a}|{b}")
        rec.setdefault("scene", scene)
        errs = _pair_errors(rec)
        if errs:
            raise ValueError(f"pair {rec.get('id')!r}: {'; '.join(errs)}")
        if rec["scene"] != scene:
            raise ValueError(f"pair {rec['id']!r}: scene {rec['scene']!r} but frames are {scene!r}")
        if rec["id"] in self._pair_ids:
            raise ValueError(f"duplicate pair id {rec['id']!r}")
        rec["split"] = self._scene_split[scene]
        ordered = {k: rec.pop(k) for k in ("id", "scene", "split", "a", "b")}
        ordered.update(rec)
        self._start()
        self._append(self._pairs_fh, _dumps(ordered), sync=sync)
        self._pair_ids.add(ordered["id"])

    def add_pairs(self, records: Iterable[dict]) -> None:
        """:meth:`add_pair` for many pairs with one fsync at the end."""
        for rec in records:
            self.add_pair(rec, sync=False)
        if self._pairs_fh is not None:  # None: nothing written yet (every pair was there)
            os.fsync(self._pairs_fh.fileno())

    def sync(self) -> None:
        """fsync the manifest and pairs files (after :meth:`add` with ``sync=False``)."""
        for fh in (self._manifest_fh, self._pairs_fh):
            if fh is not None:
                os.fsync(fh.fileno())

    def _append(self, fh, line: str, *, sync: bool) -> None:
        data = (line + "\n").encode("utf-8")
        start = fh.tell()
        try:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        except BaseException:
            # Leave no partial line behind for the next append to glue onto.
            fh.truncate(start)
            raise

    def _require_open(self) -> None:
        if self._closed:
            raise ValueError(f"the writer for {self.root} is closed")

    # -- finishing

    def counts(self) -> dict:
        """The ``counts`` object as it stands: samples, per split, per scene, pairs."""
        return _counts(len(self._ids), self._per_split, self._per_scene, len(self._pair_ids))

    def _write_meta(self, *, complete: bool) -> None:
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "complete": complete,
            "tool": self.tool,
            "tool_version": rainset.__version__,
            "created": self._created,
            "params": self.params,
            "image_format": self.image_format,
            "jpeg_quality": self._recorded_quality(),
            "split_rule": self.split_rule.to_json(),
            "sources": self._sources,
            "counts": self.counts(),
        }
        atomic_write_text(self.root / META_NAME, json.dumps(meta, indent=2) + "\n")

    def _finish(self, *, complete: bool) -> None:
        if self._closed:
            return
        if not self._started:
            if not complete:  # failed before writing anything: leave the folder as it was
                self._closed = True
                self._lock.release()
                return
            self._start()
        self._closed = True
        try:
            for fh in (self._manifest_fh, self._pairs_fh):
                if fh is not None:
                    fh.flush()
                    os.fsync(fh.fileno())
                    fh.close()
            self._write_meta(complete=complete)
        finally:
            self._lock.release()

    def close(self) -> None:
        """Flush, close and write ``rainset.json`` with the counts and ``"complete": true``."""
        self._finish(complete=True)
        missing = [s for s in self.split_rule.test_scenes if s not in self._scene_split]
        if missing:
            logger.warning("%s: test scenes with no samples: %s", self.root, ", ".join(missing))
        if self._ids and not self._per_split.get("test"):
            logger.warning("%s: the test split is empty", self.root)

    def __enter__(self) -> DatasetWriter:
        self._lock.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._finish(complete=False)


# ----------------------------------------------------------------------------- reader


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) of a JSONL file; a torn last line (no newline) is skipped."""
    if not path.exists():
        return
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                if not raw.endswith(b"\n"):
                    logger.warning("%s: skipping unfinished last line %d", path, lineno)
                    return
                raise FormatError(
                    f"{path}: line {lineno} is not valid JSON ({exc}); run `rainset check`."
                ) from None
            if not isinstance(obj, dict):
                raise FormatError(f"{path}: line {lineno} is not a JSON object.")
            yield lineno, obj


class Dataset:
    """A rainset dataset opened for reading (see :func:`open_dataset`).

    Attributes
    ----------
    root : Path of the dataset folder.
    meta : dict, the parsed ``rainset.json``.
    kind : ``"paired"`` or ``"timelapse"``.
    """

    def __init__(self, root: Path, meta: dict) -> None:
        self.root = root
        self.meta = meta
        self.kind: str = meta["kind"]
        self._index: dict[str, dict] | None = None

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, kind={self.kind!r})"

    @property
    def split_rule(self) -> SplitRule:
        return SplitRule.from_json(self.meta["split_rule"])

    @staticmethod
    def _check_filter(split: str | None) -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")

    def samples(self, *, split: str | None = None, scene: str | None = None) -> Iterator[dict]:
        """Manifest records (samples, or frames of a timelapse dataset), in file order."""
        self._check_filter(split)
        for _, rec in _iter_jsonl(self.root / MANIFEST_NAME):
            if (split is None or rec.get("split") == split) and (
                scene is None or rec.get("scene") == scene
            ):
                yield rec

    def pairs(self, *, split: str | None = None, scene: str | None = None) -> Iterator[dict]:
        """Records of ``pairs.jsonl``; none for a paired dataset."""
        self._check_filter(split)
        for _, rec in _iter_jsonl(self.root / PAIRS_NAME):
            if (split is None or rec.get("split") == split) and (
                scene is None or rec.get("scene") == scene
            ):
                yield rec

    def scenes(self) -> list[str]:
        """Sorted scene ids present in the manifest."""
        return sorted({rec["scene"] for rec in self.samples()})

    def sample(self, sample_id: str) -> dict:
        """The record with this id (a frame, for resolving a pair's ``a`` and ``b``)."""
        if self._index is None:
            self._index = {rec["id"]: rec for rec in self.samples()}
        try:
            return self._index[sample_id]
        except KeyError:
            raise KeyError(f"{self.root / MANIFEST_NAME} has no record {sample_id!r}") from None

    def path(self, relpath: str) -> Path:
        """Absolute path of a record's relative path."""
        msg = _relpath_error(relpath)
        if msg:
            raise ValueError(f"relpath {msg}")
        return self.root / relpath

    def _ref(self, sample: dict, key: str) -> str:
        value: Any = sample
        for part in key.split("."):  # "tiers.5x5"
            if not isinstance(value, dict) or part not in value:
                raise KeyError(f"record {sample.get('id')!r} has no {key!r}")
            value = value[part]
        if not isinstance(value, str):
            raise ValueError(f"record {sample.get('id')!r}: {key!r} is not an image path")
        return value

    def load(self, sample: dict, key: str) -> np.ndarray:
        """Read the image ``sample[key]`` (``"tiers.<name>"`` for a tier).

        Returns
        -------
        image : (H, W, 3) uint8 (or uint16) RGB ndarray; single-channel files come back with
            the value repeated on three channels.
        """
        return read_image(self.path(self._ref(sample, key)))

    def load_mask(self, sample: dict, key: str = "mask") -> np.ndarray:
        """Read a mask as an (H, W) bool ndarray (stored 0 / 255; true above 127)."""
        return self.load(sample, key)[..., 0] > 127


def open_dataset(root: str | os.PathLike) -> Dataset:
    """Open a dataset for reading.

    Raises
    ------
    FormatError
        ``rainset.json`` is missing, invalid, or from a newer format version.
    """
    root = Path(root)
    meta = _load_meta(root)
    if not meta.get("complete", False):
        logger.warning("%s: the dataset is unfinished (its writer did not close)", root)
    return Dataset(root, meta)


# ----------------------------------------------------------------------------- check


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
    if not decode and suffix in (".png", ".jpg", ".jpeg"):
        with open(path, "rb") as f:
            size = _png_size(f.read(24)) if suffix == ".png" else _jpeg_size(f)
        if size is None or 0 in size:
            raise InputError(f"{path}: not a readable {suffix[1:].upper()} header.")
        return size
    data = np.fromfile(path, dtype=np.uint8)
    from rainset._cvlog import opencv_quiet

    with opencv_quiet():  # a bad file is our one-line error, not OpenCV's log lines
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{path}: not a readable image (empty, truncated or unknown format).")
    if suffix in (".jpg", ".jpeg") and bytes(data[-2:]) != b"\xff\xd9":
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
    meta_path = root / META_NAME
    if not meta_path.is_file():
        return [Problem(META_NAME, None, f"missing: {root} is not a rainset dataset")]
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [Problem(META_NAME, None, f"not valid JSON ({exc})")]
    errs, fatal = _meta_errors(meta)
    problems = [Problem(META_NAME, None, e) for e in errs]
    if fatal:
        return problems
    kind = meta["kind"]
    if meta.get("complete") is not True:
        problems.append(
            Problem(META_NAME, None, "unfinished: its writer did not close; rerun it to resume")
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
    if meta.get("complete") is True and not records and (root / MANIFEST_NAME).is_file():
        if not any(p.path == MANIFEST_NAME for p in problems):
            problems.append(Problem(MANIFEST_NAME, None, "no samples: the dataset is empty"))
    order = {META_NAME: 0, MANIFEST_NAME: 1, PAIRS_NAME: 2}
    problems.sort(key=lambda p: (order.get(p.path, 3), p.path, p.line or 0))
    return problems


def _check_manifest(root: Path, kind: str, problems: list[Problem]) -> list[tuple[int, dict]]:
    """Line-level problems, duplicate ids and scene leaks; returns the well-formed records."""
    if not (root / MANIFEST_NAME).is_file():
        problems.append(Problem(MANIFEST_NAME, None, "missing"))
        return []
    scan = _scan_jsonl(root / MANIFEST_NAME)
    problems += [Problem(MANIFEST_NAME, n, why) for n, why in scan.errors]
    records, first_line, scene_splits = [], {}, {}
    for n, rec in scan.records:
        bad = _record_errors(kind, rec)
        problems += [Problem(MANIFEST_NAME, n, e) for e in bad]
        if bad:
            continue
        records.append((n, rec))
        sid = rec["id"]
        if sid in first_line:
            msg = f"duplicate id {sid!r} (first on line {first_line[sid]})"
            problems.append(Problem(MANIFEST_NAME, n, msg))
        first_line.setdefault(sid, n)
        scene_splits.setdefault(rec["scene"], {}).setdefault(rec["split"], n)
    for scene, splits in scene_splits.items():
        if len(splits) > 1:
            where = ", ".join(f"{s} (line {n})" for s, n in splits.items())
            msg = f"scene {scene!r} leaks across splits: {where}"
            problems.append(Problem(MANIFEST_NAME, max(splits.values()), msg))
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
                problems.append(Problem(MANIFEST_NAME, n, f"{key} {rel!r}: {size}"))
            elif key != ref_key and not isinstance(ref_size, str) and size != ref_size:
                msg = (
                    f"{key} {rel!r} is {size[0]}x{size[1]} (HxW) but {ref_key} {ref_rel!r} "
                    f"is {ref_size[0]}x{ref_size[1]}"
                )
                problems.append(Problem(MANIFEST_NAME, n, msg))


def _check_pairs(root, kind, records, scene_split, problems) -> int:
    """Problems of ``pairs.jsonl``; returns the number of well-formed pairs."""
    path = root / PAIRS_NAME
    if not path.exists():
        return 0
    if kind != "timelapse":
        problems.append(Problem(PAIRS_NAME, None, f"a {kind} dataset has no pairs file"))
        return 0
    frame_scene = {rec["id"]: rec["scene"] for _, rec in records}
    scan = _scan_jsonl(path)
    problems += [Problem(PAIRS_NAME, n, why) for n, why in scan.errors]
    seen: dict[str, int] = {}
    n_pairs = 0
    for n, rec in scan.records:
        bad = _pair_errors(rec)
        problems += [Problem(PAIRS_NAME, n, e) for e in bad]
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
            f"pair {pid!r} names frame {f!r}, which is not in {MANIFEST_NAME}" for f in missing
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
        problems += [Problem(PAIRS_NAME, n, m) for m in msgs]
    return n_pairs


def _check_meta_against(meta, records, n_pairs, verify_hashes, problems, root=None) -> None:
    """Counts, named test scenes and (optionally) source hashes against what is on disk."""
    per_split = Counter(rec["split"] for _, rec in records)
    per_scene = Counter(rec["scene"] for _, rec in records)
    if meta.get("complete") is True and isinstance(meta.get("counts"), dict):
        for key, value in _counts(len(records), per_split, per_scene, n_pairs).items():
            if meta["counts"].get(key) != value:
                msg = f"counts.{key} is {meta['counts'].get(key)!r} but the files hold {value!r}"
                problems.append(Problem(META_NAME, None, msg))
    try:
        test_scenes = SplitRule.from_json(meta["split_rule"]).test_scenes
    except (TypeError, ValueError):
        test_scenes = ()  # already reported
    for scene in test_scenes:
        if scene not in per_scene:
            msg = f"split_rule names test scene {scene!r} but no record has it"
            problems.append(Problem(META_NAME, None, msg))
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
            problems.append(Problem(META_NAME, None, msg))
            continue
        if digest != src["sha256"]:
            msg = f"source {src['path']!r} changed: sha256 {digest}, recorded {src['sha256']}"
            problems.append(Problem(META_NAME, None, msg))
