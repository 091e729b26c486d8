"""Shards into one dataset: ``rainset merge SHARD... -o OUT``.

A *shard* is any finished rainset dataset (one job's output: one video on a batch scheduler, one
task of the Ray executor). Shards of one kind, made with the same options, merge into one
dataset that equals the single run over all their inputs:

- ids stay as they are (the scene-id rule makes them independent of how inputs were split
  into jobs); the same id with different content in two shards is a conflict;
- sources are the union, in shard order; counts are those of the merged records;
- every record's split is recomputed from its scene by the split rule (shards with different
  rules are refused unless a rule is given);
- ``review.json`` decisions are kept (the same question answered differently is a conflict);
- every other file (images, previews, per-scene reports) is hard-linked where the file
  system allows it, else copied; the same path with different bytes is a conflict.

Conflicts are all found before anything is written, and refused. Merging is idempotent (a
shard merged twice adds nothing) and resumable (an interrupted merge is rerun; the output is
an ordinary :class:`rainset.dataset.DatasetWriter` folder, locked while it is written).
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rainset.dataset import (
    MANIFEST_NAME,
    META_NAME,
    PAIRS_NAME,
    REVIEW_NAME,
    DatasetWriter,
    SplitRule,
    layout,
)
from rainset.dataset import iter_jsonl as _iter_jsonl
from rainset.dataset import load_meta as _load_meta
from rainset.dataset.jsonl import dumps as _dumps
from rainset.errors import FormatError, ParameterError, RainsetError
from rainset.fsutil import atomic_path, is_temp_name
from rainset.inputs import STAGING_NAME  # the executors' shards: never copied by a merge
from rainset.lock import LOCK_NAME, describe, read_lock, stale_reason

logger = logging.getLogger(__name__)

__all__ = ["STAGING_NAME", "MergeConflictError", "MergeResult", "Merger", "merge", "shard_identity"]

#: Files a merge does not copy: the dataset's own (merged record by record), the lock, and
#: reports that summarise one run (``report.md`` of pairs; not valid for the merged whole).
_NOT_COPIED = {META_NAME, MANIFEST_NAME, PAIRS_NAME, REVIEW_NAME, LOCK_NAME, layout.REPORT}
_IDENTITY = ("kind", "tool", "params", "image_format", "jpeg_quality")


class MergeConflictError(RainsetError):
    """Shards (or a shard and the output) disagree: ``conflicts`` lists every disagreement."""

    def __init__(self, conflicts: list[str]) -> None:
        self.conflicts = conflicts
        more = f" (and {len(conflicts) - 3} more)" if len(conflicts) > 3 else ""
        super().__init__(
            f"{len(conflicts)} conflict(s), nothing merged: {'; '.join(conflicts[:3])}{more}."
        )


@dataclass
class MergeResult:
    """What a merge did: shards read, records and pairs added, files linked or copied, and
    what was already in the output (records, files)."""

    shards: int = 0
    records: int = 0
    pairs: int = 0
    linked: int = 0
    copied: int = 0
    present: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Shard:
    root: Path
    meta: dict
    records: list[dict]
    pairs: list[dict]
    review: dict | None


def shard_identity(meta: dict) -> dict:
    """What two shards must share to merge: kind, tool, params, image format and quality."""
    return {k: meta.get(k) for k in _IDENTITY}


def _read_shard(root: Path) -> _Shard:
    meta = _load_meta(root)
    if meta.get("complete") is not True:
        raise FormatError(
            f"{root} is an unfinished dataset (its writer did not close); rerun its command to "
            "finish it before merging."
        )
    holder = read_lock(root)
    if holder is not None and stale_reason(holder) is None:
        raise FormatError(f"{root} is being written by {describe(holder)}; merge it when it is done.")
    records = [rec for _, rec in _iter_jsonl(root / MANIFEST_NAME)]
    pairs = [rec for _, rec in _iter_jsonl(root / PAIRS_NAME)]
    review = None
    if (root / REVIEW_NAME).is_file():
        try:
            review = json.loads((root / REVIEW_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FormatError(f"{root / REVIEW_NAME}: not a readable review file ({exc}).") from None
        if not isinstance(review, dict) or not isinstance(review.get("decisions"), dict):
            raise FormatError(f"{root / REVIEW_NAME}: not a rainset review file (no 'decisions').")
    return _Shard(root, meta, records, pairs, review)


def _files(root: Path) -> list[str]:
    """Relative paths of the files a merge copies from ``root`` (sorted)."""
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != STAGING_NAME)
        rel = Path(folder).relative_to(root)
        for n in names:
            if is_temp_name(n) or n.startswith(f"{LOCK_NAME}.") or (not rel.parts and n in _NOT_COPIED):
                continue
            out.append((rel / n).as_posix())
    return sorted(out)


def _same_file(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):
            return True
    return filecmp.cmp(a, b, shallow=False)


def _line(rec: dict, split: str) -> str:
    """A record as the writer stores it, with ``split`` set."""
    rec = {**rec, "split": split}
    ordered = {k: rec.pop(k) for k in ("id", "scene", "split")}
    ordered.update(rec)
    return _dumps(ordered)


def _link_or_copy(src: Path, dst: Path, link: bool) -> str:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return "linked"
        except FileExistsError:
            raise
        except OSError:  # another file system (EXDEV), or links not allowed
            pass
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return "copied"


class Merger:
    """Merge shards one after another into one open output (the executor's driver keeps one
    open for a whole run; :func:`merge` is the one-call form).

    Parameters
    ----------
    out : the output dataset folder (created, or resumed when it holds the same kind of
        dataset made with the same options).
    identity : kind, tool, params, image_format, jpeg_quality of the shards (see
        :func:`shard_identity`); ``jpeg_quality`` None means 95.
    split_rule : the rule every record's split is recomputed by.
    link : hard-link files instead of copying them where the file system allows it.
    """

    def __init__(self, out: str | os.PathLike, identity: dict, split_rule: SplitRule, *, link: bool = True):
        self.out = Path(out)
        self.identity = identity
        self.split_rule = split_rule
        self.link = link
        self.writer = DatasetWriter(
            self.out, kind=identity["kind"], params=identity["params"], split_rule=split_rule,
            image_format=identity["image_format"], jpeg_quality=identity.get("jpeg_quality") or 95,
            tool=identity["tool"],
        )  # fmt: skip
        self.identity = {**identity, "params": self.writer.params}  # as JSON reads it back
        self._lines: dict[str, str] = {}
        self._pairs: dict[str, str] = {}
        for _, rec in _iter_jsonl(self.out / MANIFEST_NAME):
            self._lines[rec["id"]] = _dumps(rec)
        for _, rec in _iter_jsonl(self.out / PAIRS_NAME):
            self._pairs[rec["id"]] = _dumps(rec)
        self._review: dict | None = None
        if (self.out / REVIEW_NAME).is_file():
            self._review = json.loads((self.out / REVIEW_NAME).read_text(encoding="utf-8"))
        self.result = MergeResult()

    def __enter__(self) -> Merger:
        self.writer.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.writer.__exit__(exc_type, exc, tb)

    # -- checks

    def conflicts(self, shards: Sequence[_Shard]) -> list[str]:
        """Every disagreement between ``shards`` and with the output, as one line each."""
        found: list[str] = []
        lines = dict(self._lines)
        where = dict.fromkeys(lines, str(self.out))
        pair_lines = dict(self._pairs)
        files: dict[str, Path] = {}
        recorded = self.writer._sources  # noqa: SLF001 - read only: what the output records so far
        scenes = {s.get("scene"): (s["sha256"], s["path"]) for s in recorded if s.get("scene")}
        decisions = dict((self._review or {}).get("decisions", {}))
        review_params = (self._review or {}).get("params")
        for sh in shards:
            ident = shard_identity(sh.meta)
            if ident != self.identity:
                diff = [k for k in _IDENTITY if ident[k] != self.identity[k]]
                found.append(f"{sh.root} was made with other {', '.join(diff)} than the others")
                continue
            for s in sh.meta.get("sources", []):
                sc = s.get("scene")
                if sc is None:  # a photo of synth: no scene id to disagree on
                    continue
                if sc in scenes and scenes[sc][0] != s["sha256"]:
                    found.append(
                        f"scene {sc!r} comes from {scenes[sc][1]} and, with other contents, "
                        f"from {s['path']} (in {sh.root})"
                    )
                scenes.setdefault(sc, (s["sha256"], s["path"]))
            for rec in sh.records:
                line = _line(rec, self.split_rule.split_of(rec["scene"]))
                old = lines.get(rec["id"])
                if old is not None and old != line:
                    found.append(f"id {rec['id']!r} differs between {where[rec['id']]} and {sh.root}")
                lines.setdefault(rec["id"], line)
                where.setdefault(rec["id"], str(sh.root))
            for rec in sh.pairs:
                split = self.split_rule.split_of(rec["scene"])
                line = _dumps({**rec, "split": split})
                old = pair_lines.setdefault(rec["id"], line)
                if old != line:
                    found.append(f"pair {rec['id']!r} differs in {sh.root}")
            for rel in _files(sh.root):
                src = sh.root / rel
                first = files.setdefault(rel, src)
                if first is not src and not _same_file(first, src):
                    found.append(f"{rel} differs between {first.parent} and {sh.root}")
                elif first is src and (self.out / rel).is_file() and not _same_file(src, self.out / rel):
                    found.append(f"{rel} of {sh.root} differs from the one in {self.out}")
            if sh.review is not None:
                if review_params is not None and sh.review.get("params") != review_params:
                    found.append(f"{sh.root / REVIEW_NAME} was made for other options")
                review_params = review_params or sh.review.get("params")
                for key, d in sh.review["decisions"].items():
                    old = decisions.setdefault(key, d)
                    if old.get("action") != d.get("action"):
                        found.append(
                            f"review question {key} answered {old.get('action')!r} and, in "
                            f"{sh.root}, {d.get('action')!r}"
                        )
        return found

    # -- writing

    def add(self, shard: _Shard) -> None:
        """Merge one shard read by :func:`read_shard` (already checked by :meth:`conflicts`)."""
        w = self.writer
        for rel in _files(shard.root):
            dst = self.out / rel
            if dst.is_file():
                self.result.present += 1
                continue
            try:
                how = _link_or_copy(shard.root / rel, dst, self.link)
            except FileExistsError:  # written meanwhile by this merge: checked identical above
                self.result.present += 1
                continue
            if how == "linked":
                self.result.linked += 1
            else:
                self.result.copied += 1
        for s in shard.meta.get("sources", []):
            w.add_source(s["path"], note=s.get("note", ""), sha256=s["sha256"], scene=s.get("scene"))
        for rec in shard.records:
            if w.has(rec["id"]):
                continue
            split = self.split_rule.split_of(rec["scene"])
            w.add({**rec, "split": split}, sync=False)  # one fsync per shard, below
            self._lines[rec["id"]] = _line(rec, split)
            self.result.records += 1
        new_pairs = []
        for rec in shard.pairs:
            if not w.has_pair(rec["id"]):
                new_pairs.append({k: v for k, v in rec.items() if k != "split"})
                self._pairs[rec["id"]] = _dumps({**rec, "split": self.split_rule.split_of(rec["scene"])})
        if new_pairs:
            w.add_pairs(new_pairs)
            self.result.pairs += len(new_pairs)
        w.sync()  # the shard's records are on disk before it counts as merged
        if shard.review is not None:
            self._merge_review(shard.review)
        self.result.shards += 1

    def _merge_review(self, review: dict) -> None:
        from rainset.review import ReviewLog

        if self._review is None:
            self._review = {"params": review.get("params"), "decisions": {}}
        decisions = self._review["decisions"]
        new = {k: d for k, d in review["decisions"].items() if k not in decisions}
        if not new and (self.out / REVIEW_NAME).is_file():
            return
        decisions.update(new)
        log = ReviewLog(self.out / REVIEW_NAME, params=self._review["params"])
        log.decisions.update(new)
        log.save()  # as build-gt writes it (sorted keys), so a merge equals the single run


def read_shard(root: str | os.PathLike) -> _Shard:
    """A finished dataset read whole for merging (manifest, pairs, review file).

    Raises
    ------
    FormatError
        Not a dataset, unfinished, or being written.
    """
    return _read_shard(Path(root))


def _check_paths(shards: Sequence[Path], out: Path) -> None:
    o = Path(os.path.realpath(out))
    for sh in shards:
        r = Path(os.path.realpath(sh))
        if r == o or r in o.parents:
            raise ParameterError("out", f"{out} is, or is inside, the shard {sh}; choose another output")
        if o in r.parents and STAGING_NAME not in r.relative_to(o).parts:
            raise ParameterError("out", f"the shard {sh} lies inside the output {out}; choose another output")


def merge(
    shards: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    *,
    split_rule: SplitRule | None = None,
    link: bool = True,
) -> MergeResult:
    """Merge finished datasets of one kind (shards) into ``out``.

    Parameters
    ----------
    shards : dataset folders, in the order their records should appear.
    out : the merged dataset (created; or resumed, or extended, when it holds the same kind
        of dataset made with the same options).
    split_rule : the split rule of the result. Default: the shards' common rule (shards with
        different rules are then refused).
    link : hard-link images instead of copying them where possible.

    Returns
    -------
    MergeResult

    Raises
    ------
    ParameterError
        No shard; ``out`` is a shard or holds one; different split rules and no ``split_rule``.
    FormatError
        A shard is not a finished dataset, or the output holds a different one.
    MergeConflictError
        The same id, file or review question with different content (nothing is written).
    """
    paths = [Path(s) for s in shards]
    if not paths:
        raise ParameterError("shards", "give at least one shard")
    out = Path(out)
    _check_paths(paths, out)
    read = [_read_shard(p) for p in paths]
    identity = shard_identity(read[0].meta)
    if split_rule is None:
        rules = {json.dumps(sh.meta["split_rule"], sort_keys=True): sh.root for sh in read}
        if len(rules) > 1:
            a, b = list(rules.values())[:2]
            raise ParameterError(
                "split_rule",
                f"{a} and {b} were split by different rules; give the rule the merged dataset uses",
            )
        split_rule = SplitRule.from_json(read[0].meta["split_rule"])
    merger = Merger(out, identity, split_rule, link=link)
    conflicts = merger.conflicts(read)
    if conflicts:
        raise MergeConflictError(conflicts)
    with merger:
        for sh in read:
            merger.add(sh)
    return merger.result
