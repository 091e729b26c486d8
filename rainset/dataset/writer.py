"""Writing a dataset: :class:`DatasetWriter` (atomic, resumable, one writer per folder).

About 520 lines, half of them docstrings: one class whose methods share its counts and open
files; reopening lives in :mod:`rainset.dataset.resume`, images in :mod:`~rainset.dataset.images`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

import rainset
from rainset.dataset.images import SYNC, Encoder, PendingWrites, prepare_image
from rainset.dataset.jsonl import dumps
from rainset.dataset.layout import (
    IMAGE_FORMATS,
    META,
    image_relpath,
    image_suffix,
    manifest_path,
    meta_path,
    pairs_path,
    relative,
)
from rainset.dataset.resume import _Resume
from rainset.dataset.rules import (
    FORMAT_VERSION,
    KINDS,
    SplitRule,
    _counts,
    _image_refs,
    _pair_errors,
    _record_errors,
    hash_source,
)
from rainset.dataset.worker import WriterHandle
from rainset.errors import FormatError, InputError
from rainset.fsutil import atomic_write_text, stale_temp_files
from rainset.image import PNG_SETTINGS
from rainset.image import write_image as _encode
from rainset.inputs import recorded_paths
from rainset.lock import FolderLock

logger = logging.getLogger("rainset.dataset")


class DatasetWriter(_Resume):
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
    encoder : runs the image writes of :meth:`write_image`: anything with
        ``submit(fn, *args) -> Future`` (:class:`concurrent.futures.Executor`); default: each
        write happens inside ``write_image``. With a pool, :meth:`add` waits for the images
        its record names, and :meth:`sync` and :meth:`close` for every outstanding one, so a
        manifest line never names an image not yet on disk. The caller owns the pool.

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
        encoder: Encoder | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
        if not 1 <= int(jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
        if not isinstance(split_rule, SplitRule):
            raise ValueError(f"split_rule must be a SplitRule, got {type(split_rule).__name__}")
        if not isinstance(params, dict):
            raise ValueError(f"params must be a dict, got {type(params).__name__}")
        self.root = Path(root)
        self.kind = kind
        self.params = json.loads(dumps(params))  # as it will read back (tuples -> lists)
        self.split_rule = split_rule
        self.image_format = image_format
        self.jpeg_quality = int(jpeg_quality)  # recorded (and compared) only for "jpg"
        self.tool = tool
        self.encoder: Encoder = SYNC if encoder is None else encoder
        self._pending = PendingWrites()
        self.image_ext = image_suffix(image_format)  # of RGB images
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
        if meta_path(self.root).exists():
            self._created = self._resume()
        else:
            if (manifest_path(self.root)).exists():
                raise FormatError(
                    f"{manifest_path(self.root)} exists without {META}: {self.root} holds "
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
        if (meta_path(self.root)).exists():  # said on the first write, not on a refused run
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
        self._manifest_fh = open(manifest_path(self.root), "ab")
        if self.kind == "timelapse":
            self._pairs_fh = open(pairs_path(self.root), "ab")

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
            rec["relpath"] = relative(resolved, self.root)
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
        relpath : path stem without extension, e.g. ``"rain/street/w0/000012"`` (from
            :mod:`rainset.dataset.layout`); the writer appends ``.png`` or ``.jpg``.
        image : (H, W, 3) uint8 RGB, (H, W) uint8 (labels, grey maps), (H, W) bool (a mask,
            stored as 0 / 255) or uint16 ndarray. With a pooled ``encoder`` the array is
            encoded later: do not change it in place after the call.
        lossless : force PNG for an RGB image in a JPEG dataset (rain maps, residuals).
            Bool, single-channel and 16-bit images are always PNG.

        Returns
        -------
        relpath : str, the stem plus the extension used; put it in the record.
        """
        self._require_open()
        self._start()
        rel, arr = prepare_image(relpath, image, image_format=self.image_format, lossless=lossless)
        fut = self.encoder.submit(_encode, self.root / rel, arr, quality=self.jpeg_quality)
        self._pending.add(rel, fut)
        return rel

    def image_relpath(self, stem: str, image: Any = None, *, lossless: bool = False) -> str:
        """The relative path :meth:`write_image` returns for ``stem`` and ``image``
        (``image=None``: an RGB 8-bit image), for a record made before its image is written."""
        return image_relpath(stem, self.image_format, image, lossless=lossless)

    def wait_images(self) -> None:
        """Wait until every image handed to :meth:`write_image` is on disk (a failed write
        raises here)."""
        self._pending.wait()

    def handle(self, *, known: Iterable[str] | None = None) -> WriterHandle:
        """A picklable handle for worker processes (:mod:`rainset.dataset.worker`).

        ``known``: the ids the worker is told are done (default: all, :meth:`ids`; give a
        subset, e.g. one scene's, to keep the handle small).
        """
        ids = self.ids() if known is None else frozenset(known)
        return WriterHandle(str(self.root), self.kind, self.image_format, self.jpeg_quality, ids)

    def receive(self, kind: str, payload: Any) -> None:
        """Apply a message a :class:`~rainset.dataset.worker.WorkerWriter` sent: a record
        (added unless the manifest has it) or a source."""
        if kind == "record":
            if not self.has(payload["id"]):
                self.add(payload)
        elif kind == "source":
            self.add_source(**payload)
        else:
            raise ValueError(f"unknown writer message {kind!r}")

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
        self._pending.wait(v for _, v in _image_refs(self.kind, rec) if isinstance(v, str))
        for key, value in _image_refs(self.kind, rec):
            if not (self.root / value).is_file():
                raise ValueError(f"record {rec['id']!r}: {key} {value!r} does not exist")
        ordered = {k: rec.pop(k) for k in ("id", "scene", "split")}
        ordered.update(rec)
        line = dumps(ordered)
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
        self._append(self._pairs_fh, dumps(ordered), sync=sync)
        self._pair_ids.add(ordered["id"])

    def add_pairs(self, records: Iterable[dict]) -> None:
        """:meth:`add_pair` for many pairs with one fsync at the end."""
        for rec in records:
            self.add_pair(rec, sync=False)
        if self._pairs_fh is not None:  # None: nothing written yet (every pair was there)
            os.fsync(self._pairs_fh.fileno())

    def sync(self) -> None:
        """fsync the manifest and pairs files (after :meth:`add` with ``sync=False``), after
        waiting for every outstanding image write."""
        self._pending.wait()
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
            "png": json.loads(json.dumps(PNG_SETTINGS)),  # the encoder settings (issue 14)
            "split_rule": self.split_rule.to_json(),
            "sources": self._sources,
            "counts": self.counts(),
        }
        atomic_write_text(meta_path(self.root), json.dumps(meta, indent=2) + "\n")

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
        failed = None
        try:
            try:  # images the encoder still holds land before the dataset is called complete
                self._pending.wait()
            except Exception as exc:  # noqa: BLE001 - raised below when closing cleanly
                failed = exc
            for fh in (self._manifest_fh, self._pairs_fh):
                if fh is not None:
                    fh.flush()
                    os.fsync(fh.fileno())
                    fh.close()
            self._write_meta(complete=complete and failed is None)
        finally:
            self._lock.release()
        if failed is not None and complete:
            raise failed

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
