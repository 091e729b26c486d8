"""An export's output folder: the overlap and non-empty refusals, the resume state, completion.

:func:`open_output` refuses a non-empty folder unless it holds an export of the same dataset
with the same options, which is then resumed; :func:`close_output` marks it done;
:func:`clean_up_refusals` makes a refused export leave no half-written folder behind. The
state lives in ``.rainset-export.json`` (hidden: image-folder loaders skip it), which
:func:`export_state` reads back for the layouts' readers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from rainset.dataset import MANIFEST_NAME, PAIRS_NAME, Dataset
from rainset.errors import InputError, ParameterError
from rainset.fsutil import atomic_write_text, stale_temp_files

logger = logging.getLogger(__name__)


#: The export's own record in its output folder.
STATE_NAME = ".rainset-export.json"


STATE_VERSION = 1


def dataset_identity(ds: Dataset) -> dict:
    """What makes an export "of the same dataset": where it is, when it was made, its records."""
    ident = {"path": os.path.realpath(ds.root), "created": ds.meta.get("created")}
    for name in (MANIFEST_NAME, PAIRS_NAME):
        p = ds.root / name
        if p.is_file():
            ident[name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return ident


def open_output(out: str | os.PathLike, ds: Dataset, fmt: str, options: dict) -> bool:
    """Prepare the output folder; True when an unfinished (or finished) export is resumed.

    Raises
    ------
    ParameterError
        ``out`` is the dataset folder, inside it, or holds it.
    InputError
        ``out`` is a file, or a non-empty folder that does not hold an export of this dataset
        with these options.
    """
    out = Path(out)
    real_out, real_ds = os.path.realpath(out), os.path.realpath(ds.root)
    for a, b in ((real_out, real_ds), (real_ds, real_out)):
        if a == b or a.startswith(b.rstrip(os.sep) + os.sep):
            raise ParameterError(
                "out", f"{out} and the dataset {ds.root} overlap; export to a folder outside it"
            )
    state = {
        "version": STATE_VERSION,
        "format": fmt,
        "options": options,
        "dataset": dataset_identity(ds),
    }
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder.")
    if out.is_dir() and any(out.iterdir()):
        old = _read_state(out)
        if old is None:
            raise InputError(
                f"{out} is not empty and holds no rainset export; choose an empty or new folder."
            )
        differ = [k for k in ("format", "options", "dataset") if old.get(k) != state[k]]
        if differ:
            what = {"format": "another format", "options": "other options",
                    "dataset": "another dataset (or an older version of it)"}
            detail = ", ".join(what[k] for k in differ)
            raise InputError(
                f"{out} holds an export with {detail}; choose an empty or new folder, or delete it."
            )
        for tmp in stale_temp_files(out):  # left by an interrupted export; nothing else runs
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                logger.warning("%s: removed %s, left by an interrupted export", out, tmp)
        _write_state(out, {**state, "complete": False})
        return True
    out.mkdir(parents=True, exist_ok=True)
    _write_state(out, {**state, "complete": False})
    return False


def close_output(out: str | os.PathLike, summary: dict) -> None:
    """Mark the export in ``out`` complete and record what it wrote."""
    out = Path(out)
    state = _read_state(out) or {}
    atomic_write_text(
        out / STATE_NAME, json.dumps({**state, "complete": True, "wrote": summary}, indent=2) + "\n"
    )


def export_state(out: str | os.PathLike) -> dict | None:
    """The parsed ``.rainset-export.json`` of an export folder (or one above a folder inside it,
    up to two levels), or None: how readers of the layouts tell a rainset export."""
    p = Path(out)
    for folder in (p, *list(p.parents)[:2]):
        state = _read_state(folder)
        if state is not None:
            return state
    return None


def _read_state(out: Path) -> dict | None:
    try:
        state = json.loads((out / STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_state(out: Path, state: dict) -> None:
    atomic_write_text(out / STATE_NAME, json.dumps(state, indent=2) + "\n")


def clean_up_refusals(export_fn):
    """Decorate an exporter: when it refuses (a ``RainsetError`` or ``ValueError``) after it
    created its output folder, or filled an empty one, that folder is emptied again (and
    removed if it was made), so a refusal leaves nothing half-written. An interruption, or a
    refusal while resuming, leaves the folder to be resumed."""
    import functools

    from rainset.errors import RainsetError

    @functools.wraps(export_fn)
    def wrapper(dataset, out, **kwargs):
        out_path = Path(out)
        existed = out_path.exists()
        was_empty = out_path.is_dir() and not any(out_path.iterdir())
        try:
            return export_fn(dataset, out, **kwargs)
        except (RainsetError, ValueError):
            if (not existed or was_empty) and (out_path / STATE_NAME).is_file():
                for child in list(out_path.iterdir()):
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
                if not existed:
                    out_path.rmdir()
            raise

    return wrapper
