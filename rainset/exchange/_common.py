"""What every exporter shares: file names from sample ids, links, the output folder's state.

Names
    :func:`encode_name` turns a sample id into one file name and :func:`decode_name` turns it
    back: ``%`` and spaces (and dots, for WebDataset keys, and a leading dot, which would hide
    the file) become ``%XX`` escapes, ``/`` becomes ``__``. An id the encoding cannot give back
    (one holding ``__``, or ``_`` next to a ``/``) is refused rather than renamed.
Links
    :class:`Placer` puts a dataset file at an output name as a hard link, a symbolic link or a
    copy, each atomically (a temporary name in the same folder, then a rename), so an
    interrupted export never leaves half a file under a final name.
Output folder
    :func:`open_output` refuses a non-empty folder unless it holds an export of the same
    dataset with the same options, which is then resumed; :func:`close_output` marks it done.
    The state lives in ``.rainset-export.json`` (hidden: image-folder loaders skip it).
    These live in :mod:`rainset.exchange._output`, and the importer's side (:func:`import_plans`,
    :func:`keep_image`) in :mod:`rainset.exchange._importing`; both are importable from here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from rainset.dataset import SPLITS, Dataset, check, open_dataset
from rainset.errors import FormatError, InputError, ParameterError
from rainset.exchange._importing import import_plans, keep_image  # noqa: F401 - importable here
from rainset.exchange._output import (  # noqa: F401 - importable here
    STATE_NAME,
    STATE_VERSION,
    clean_up_refusals,
    close_output,
    dataset_identity,
    export_state,
    open_output,
)
from rainset.fsutil import atomic_path
from rainset.image import read_image, write_image

logger = logging.getLogger(__name__)

#: Target formats of :func:`rainset.exchange.export`.
FORMATS = ("basicsr", "hf", "webdataset", "spa", "gtrain")
#: Ways of putting a dataset file into an export.
LINKS = ("symlink", "hardlink", "copy")

# ----------------------------------------------------------------------------- names

_ESCAPE = {"%": "%25", " ": "%20", "\t": "%09", "\n": "%0A"}


def encode_name(sample_id: str, *, escape_dots: bool = False) -> str:
    """One file name (no extension) for a sample id, reversible by :func:`decode_name`.

    Parameters
    ----------
    sample_id : a dataset id such as ``"street01/w0/000012"``.
    escape_dots : also escape ``.`` (WebDataset splits a member name at its first dot).

    Raises
    ------
    InputError
        The id holds ``__`` or a ``_`` beside a ``/`` (the name could not be read back).
    """
    text = "".join(_ESCAPE.get(c, c) for c in sample_id)
    if escape_dots:
        text = text.replace(".", "%2E")
    parts = text.split("/")
    parts = [("%2E" + p[1:]) if p.startswith(".") else p for p in parts]
    name = "__".join(parts)
    if "__" in sample_id or decode_name(name) != sample_id:
        raise InputError(
            f"sample id {sample_id!r} holds '__' or a '_' beside a '/', so its exported file "
            "name could not be read back as the id; rename the sample (its scene or source)."
        )
    return name


def decode_name(name: str) -> str:
    """The sample id of a name made by :func:`encode_name` (``__`` -> ``/``, ``%XX`` unescaped)."""
    text = name.replace("__", "/")
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def group_names(clean_paths: list[str]) -> dict[str, str]:
    """A folder name for each clean image (a scene of SPA-Data or GT-Rain): its path stem
    without the folder all of them share, encoded (``clean/clip/w00.png`` -> ``clip__w00``)."""
    stems = [str(PurePosixPath(p).with_suffix("")) for p in clean_paths]
    heads = {s.split("/", 1)[0] for s in stems}
    strip = len(heads) == 1 and all("/" in s for s in stems)
    return {p: encode_name(s.split("/", 1)[1] if strip else s) for p, s in zip(clean_paths, stems)}


class NameTable:
    """Output names already given in one export; two different files under one name (or
    names differing only in case, which a case-insensitive filesystem merges) are refused."""

    def __init__(self) -> None:
        self._by_key: dict[str, tuple[str, str]] = {}

    def claim(self, name: str, source: str) -> bool:
        """Register ``name`` for ``source``; False when that source already has it.

        Raises
        ------
        InputError
            Another source already maps to this name.
        """
        key = name.lower()
        have = self._by_key.get(key)
        if have is None:
            self._by_key[key] = (name, source)
            return True
        if have[1] == source and have[0] == name:
            return False
        raise InputError(
            f"{source} and {have[1]} both map to the exported name {have[0]!r}"
            + (" (they differ only in case)" if have[0] != name else "")
            + "; rename one of the samples."
        )


# ----------------------------------------------------------------------------- links


class Placer:
    """Put dataset files into the export: hard link, symbolic link or copy, atomically.

    Parameters
    ----------
    link : ``"hardlink"``, ``"symlink"``, ``"copy"``, or None: hard links where the
        filesystem allows them, else copies (and a note says so).
    """

    def __init__(self, link: str | None) -> None:
        if link is not None and link not in LINKS:
            raise ParameterError("link", f"must be one of {', '.join(LINKS)}, got {link!r}")
        self.mode = link or "hardlink"
        self.explicit = link is not None
        self.notes: list[str] = []
        self.placed = 0
        self.converted = 0
        self._converted: dict[Path, Path] = {}

    def place(self, src: Path, dst: Path) -> None:
        """Make ``dst`` hold ``src``'s bytes (an existing up-to-date ``dst`` is kept)."""
        if self._current(src, dst):
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        if self.mode == "copy":
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
        else:
            tmp = dst.parent / f".{dst.name}.tmp-{secrets.token_hex(4)}"
            try:
                if self.mode == "hardlink":
                    os.link(src, tmp)
                else:
                    os.symlink(os.path.realpath(src), tmp)
                os.replace(tmp, dst)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                if self.mode != "hardlink" or exc.errno not in _NO_LINK:
                    raise
                if self.explicit:
                    raise InputError(
                        f"{src}: cannot be hard-linked into {dst.parent} ({exc.strerror}); "
                        "choose `link` copy or symlink."
                    ) from None
                self.notes.append(
                    f"hard links are not possible from {src.parent} to {dst.parent} "
                    f"({exc.strerror}); the files were copied."
                )
                self.mode = "copy"
                self.place(src, dst)
                return
        self.placed += 1

    def convert_png(self, src: Path, dst: Path) -> None:
        """Write ``src`` decoded as a PNG at ``dst`` (same pixels; for layouts that need PNG).

        A source converted once (a clean image shared by many frames) is placed again from its
        first conversion, never re-encoded per frame.
        """
        first = self._converted.get(src)
        if first is not None and first != dst:
            self.place(first, dst)
            return
        if not dst.is_file():
            write_image(dst, read_image(src))
            self.converted += 1
        self._converted[src] = dst

    def _current(self, src: Path, dst: Path) -> bool:
        if not os.path.lexists(dst):
            return False
        try:
            if self.mode == "symlink":
                return dst.is_symlink() and os.readlink(dst) == os.path.realpath(src)
            if self.mode == "hardlink":
                return not dst.is_symlink() and os.path.samefile(src, dst)
            # A copy is written whole under its final name (atomic rename), so one that exists is
            # complete; the output's state file guarantees it is of the same dataset.
            return not dst.is_symlink() and dst.stat().st_size == src.stat().st_size
        except OSError:
            return False


_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}

# ----------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class Sample:
    """One (rainy, clean) sample to export; paths relative to the dataset root."""

    id: str
    scene: str
    split: str
    rainy: str
    clean: str
    record: dict
    mask: str | None = None
    rain_map: str | None = None


@dataclass(frozen=True)
class LayoutPair:
    """One pair found in a published layout (what an importer writes as one sample)."""

    id: str
    scene: str
    rainy: Path
    clean: Path


class Layout(list):
    """The :class:`LayoutPair` list a ``read_*`` function found, with ``unmatched``: the image
    files of the layout that belong to no pair (relative paths), for one summary line."""

    unmatched: list[str]

    def __init__(self, pairs=(), unmatched=()) -> None:
        super().__init__(pairs)
        self.unmatched = list(unmatched)


def open_checked(dataset: str | os.PathLike | Dataset) -> Dataset:
    """Open a dataset and refuse one that fails :func:`rainset.dataset.check` (headers only).

    Raises
    ------
    FormatError
        Not a dataset, or ``check`` finds problems (the first is named).
    """
    ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    problems = check(ds.root, decode=False)
    if problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise FormatError(
            f"{ds.root} fails `rainset check` ({problems[0]}{more}); run `rainset check "
            f"{ds.root}` and fix the dataset before exporting it."
        )
    if ds.kind == "clean":
        raise FormatError(
            f"{ds.root} holds clean images only (kind 'clean'); there are no pairs to export."
        )
    return ds


def selected_splits(ds: Dataset, split: str) -> list[str]:
    """The splits an export writes: ``split``, or every non-empty one for ``"all"``.

    Raises
    ------
    ParameterError
        Unknown split name.
    InputError
        The chosen split has no samples.
    """
    if split != "all" and split not in SPLITS:
        raise ParameterError("split", f"must be one of {', '.join(SPLITS)} or all, got {split!r}")
    per = ds.meta.get("counts", {}).get("per_split", {})
    if split != "all":
        if not per.get(split):
            shown = ", ".join(f"{s} {per.get(s, 0)}" for s in SPLITS)
            raise InputError(f"{ds.root} has no {split} samples ({shown}).")
        return [split]
    return [s for s in SPLITS if per.get(s)]


def paired_samples(ds: Dataset, split: str) -> list[Sample]:
    """The (rainy, clean) samples of one split: every paired sample, or every time-lapse frame
    with pseudo ground truth (the frame is the rainy image).

    Raises
    ------
    InputError
        A time-lapse dataset whose frames have no pseudo ground truth.
    """
    out = []
    if ds.kind == "paired":
        for r in ds.samples(split=split):
            out.append(
                Sample(r["id"], r["scene"], r["split"], r["rainy"], r["clean"], r,
                       r.get("mask"), r.get("rain_map"))
            )
        return out
    frames = list(ds.samples(split=split))
    out = [
        Sample(r["id"], r["scene"], r["split"], r["frame"], r["clean"], r)
        for r in frames
        if isinstance(r.get("clean"), str)
    ]
    if frames and not out:
        raise InputError(
            f"{ds.root}: no frame of this time-lapse dataset has pseudo ground truth, so there "
            "is no (rainy, clean) pair to write in this layout; export it `to` hf or webdataset "
            "(frame pairs), or rebuild it with pseudo ground truth."
        )
    return out


def frame_pairs(ds: Dataset) -> int:
    """How many frame pairs a time-lapse dataset holds (0 for other kinds)."""
    if ds.kind != "timelapse":
        return 0
    return ds.meta.get("counts", {}).get("pairs", 0)


def timelapse_note(ds: Dataset, fmt: str) -> list[str]:
    """The note a layout without frame pairs gives for a time-lapse dataset."""
    n = frame_pairs(ds)
    if not n:
        return []
    return [
        f"the {fmt} layout holds (rainy, clean) pairs only: each frame was written with its "
        f"segment's pseudo ground truth, and the dataset's {n} frame pairs (m, n) were not; "
        "export `to` hf or webdataset to keep them."
    ]


# ----------------------------------------------------------------------------- result


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes
    ----------
    out : the output folder.
    format : the target format.
    counts : split -> samples (or pairs) written.
    files : list files, metadata files and shards written, relative to ``out``.
    notes : what the user should know (left-out fields, copies instead of links, ...).
    resumed : True when an earlier export in ``out`` was continued.
    """

    out: Path
    format: str
    counts: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resumed: bool = False


def progress_iter(items: list, progress) -> Iterator:
    """Iterate ``items``, calling ``progress(done, total)`` after each when given."""
    total = len(items)
    for i, item in enumerate(items, start=1):
        yield item
        if progress is not None:
            progress(i, total)


# ----------------------------------------------------------------------------- labels

#: Record keys that hold image paths (or preview sheets): never label columns.
PATH_FIELDS = frozenset(
    {"rainy", "clean", "mask", "rain_map", "residual", "tiers", "semantic", "preview"}
)
_SCALARS = (str, int, float, bool, type(None))


def label_fields(record: dict, *, skip: frozenset[str] = frozenset()) -> tuple[dict, list[str]]:
    """A record's plain JSON scalar fields, its ``labels`` flattened in (a label whose name is
    taken becomes ``label_<name>``), and the names of fields left out for holding a list or an
    object. ``id``, ``split`` and image paths are not labels."""
    out, dropped = {}, []
    for k, v in record.items():
        if k in ("id", "split", "labels") or k in PATH_FIELDS or k in skip:
            continue
        if isinstance(v, _SCALARS):
            out[k] = v
        else:
            dropped.append(k)
    labels = record.get("labels")
    if isinstance(labels, dict):
        for k, v in labels.items():
            name = k if k not in out and k not in ("id", "split") else f"label_{k}"
            if isinstance(v, _SCALARS):
                out[name] = v
            else:
                dropped.append(f"labels.{k}")
    return out, dropped


def uniform_columns(rows: list[dict]) -> list[str]:
    """Give every row every column (absent -> None) and one JSON type per column (a column
    mixing strings with numbers, or booleans with numbers, becomes strings); returns the names
    of columns made strings. Arrow, under Hugging Face ``datasets``, needs both."""
    names = list(dict.fromkeys(k for r in rows for k in r))
    made_text = []
    for k in names:
        kinds = {type(r.get(k)) for r in rows} - {type(None)}
        if kinds and not (kinds <= {int, float} or len(kinds) == 1):
            made_text.append(k)
            for r in rows:
                if r.get(k) is not None and not isinstance(r[k], str):
                    r[k] = json.dumps(r[k])
    for r in rows:
        for k in names:
            r.setdefault(k, None)
    return made_text
