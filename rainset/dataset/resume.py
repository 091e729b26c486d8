"""Reopening an unfinished dataset: the part of :class:`~rainset.dataset.DatasetWriter` that
reads what an earlier run wrote (identity check, records, pairs, lost images, torn lines)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from rainset.dataset.jsonl import scan_jsonl
from rainset.dataset.layout import manifest_path, meta_path, pairs_path
from rainset.dataset.reader import load_meta
from rainset.dataset.rules import _image_refs, _pair_errors, _record_errors
from rainset.errors import FormatError
from rainset.fsutil import atomic_write_text

logger = logging.getLogger("rainset.dataset")


class _Resume:
    """Mixin of :class:`~rainset.dataset.DatasetWriter`: loads a folder it reopens."""

    def _resume(self) -> str:
        from rainset.differences import differences

        meta = load_meta(self.root)
        old = {k: meta.get(k) for k in self._identity()}
        new = self._identity()
        differ = [k for k in new if old[k] != new[k]]
        if differ:
            detail = differences(
                {k: old[k] for k in differ}, {k: new[k] for k in differ},
                name=lambda k: f"`{k.rsplit('.', 1)[-1]}`" if k.startswith("params.") else k,
            )  # fmt: skip
            raise FormatError(
                f"{meta_path(self.root)}: the folder holds a different dataset ({detail}); "
                "choose another output folder or delete this one."
            )
        self._sources = list(meta.get("sources", []))
        for lineno, rec in self._load_lines(manifest_path(self.root)):
            errs = _record_errors(self.kind, rec)
            if errs or rec["id"] in self._ids:
                why = errs[0] if errs else f"duplicate id {rec['id']!r}"
                raise FormatError(
                    f"{manifest_path(self.root)}: line {lineno}: {why}; run `rainset check`."
                )
            self._count(rec)
        self._find_missing()
        if self.kind == "timelapse":
            for lineno, rec in self._load_lines(pairs_path(self.root)):
                errs = _pair_errors(rec)
                if errs or rec["id"] in self._pair_ids:
                    why = errs[0] if errs else f"duplicate pair id {rec['id']!r}"
                    raise FormatError(
                        f"{pairs_path(self.root)}: line {lineno}: {why}; run `rainset check`."
                    )
                self._pair_ids.add(rec["id"])
        return str(meta.get("created"))

    def _find_missing(self) -> None:
        """Note the records whose image files no longer exist (see ``self._missing``)."""
        path = manifest_path(self.root)
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
        path = manifest_path(self.root)
        self._manifest_fh.close()
        lines = path.read_text(encoding="utf-8").splitlines()
        lines[index] = line
        atomic_write_text(path, "".join(x + "\n" for x in lines))
        self._manifest_fh = open(path, "ab")

    def _load_lines(self, path: Path) -> list[tuple[int, Any]]:
        """Records of a JSONL file; a torn last line is cut off the file, others raise."""
        if not path.exists():
            return []
        scan = scan_jsonl(path)
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
