"""The inputs of a run: natural order, scene ids, outputs that overlap inputs, duplicate sources.

One owner for what every pipeline (build-gt, pairs, synth, derain, the importer, validate) asks
about its inputs:

- :func:`natural_key` / :func:`natural_sorted`: the one natural order (``frame2`` before
  ``frame10``), by the ``natsort`` package, case-insensitive, Unicode names compared in NFC.
- :func:`scene_id`: the one scene-id rule. The id of an input is its file stem (folder name for
  a folder), NFC-normalised, with every character other than a letter, a digit or ``-_.``
  replaced by ``_`` (``Straße.mp4`` -> ``Straße``, ``cam 3.mp4`` -> ``cam_3``); with ``root``
  it is the input's path relative to ``root``, ``/``-separated (``cam1/clip``). It never
  depends on the other inputs of the run or on the working directory.
- :func:`check_outputs`: an output that is or contains an input is refused; an output inside a
  folder input is excluded from it (:func:`iter_files` skips it, :func:`hash_tree` does not
  hash it) and named in a note.
- :func:`plan_sources`: scene ids plus sha256 per input, refusing the same id for different
  contents and the same contents under two ids (in the run, or against a dataset's recorded
  sources).
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from natsort import natsort_keygen, ns

from rainset.errors import InputError, ParameterError
from rainset.fsutil import sha256_file
from rainset.pathnames import check_name

__all__ = [
    "SceneIdError",
    "SceneSource",
    "SourcePlan",
    "check_destinations",
    "check_outputs",
    "hash_tree",
    "iter_files",
    "natural_key",
    "natural_sorted",
    "plan_inputs",
    "plan_sources",
    "scene_id",
]

T = TypeVar("T")

#: The staging folder of rainset's executors (shards being written); never read as an input.
STAGING_NAME = ".rainset-staging"

_NATSORT = natsort_keygen(alg=ns.INT | ns.IGNORECASE)


def natural_key(name: str) -> tuple:
    """Sort key of a name in natural order (``frame2`` < ``frame10``, case-insensitive); names
    equal but for case keep a fixed order (the exact name breaks the tie)."""
    n = unicodedata.normalize("NFC", str(name))
    return (_NATSORT(n), n)


def natural_sorted(items: Iterable[T], key: Callable[[T], str] | None = None) -> list[T]:
    """``items`` in natural order of ``key(item)`` (default ``str(item)``)."""
    get = key or str
    return sorted(items, key=lambda x: natural_key(get(x)))


# ----------------------------------------------------------------------------- scene ids


def _clean(part: str) -> str:
    part = unicodedata.normalize("NFC", part)
    out = "".join(c if c.isalnum() or c in "-_." else "_" for c in part).strip(".")
    return out or "scene"


def _abs(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.fspath(path)))


def scene_id(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> str:
    """The scene id of one input (a video or image file, or a folder).

    Parameters
    ----------
    path : the input.
    root : when given, the id is ``path`` relative to ``root`` (suffix dropped, parts joined by
        ``/``); ``path`` must lie below ``root``.

    Raises
    ------
    ParameterError
        ``root`` does not contain ``path``.
    InputError
        The path is not valid UTF-8 (a dataset cannot record it).
    """
    check_name(path)
    p = _abs(path)
    last = p.stem if p.is_file() else p.name
    if root is None:
        return _clean(last)
    r = _abs(root)
    try:
        rel = p.relative_to(r)
    except ValueError:
        raise ParameterError("root", f"{path} is not inside {root}") from None
    if not rel.parts:
        raise ParameterError("root", f"{root} is the input {path} itself; give a folder above it")
    return "/".join([*(_clean(x) for x in rel.parts[:-1]), _clean(last)])


def check_scene_name(name: str) -> str:
    """A scene name given by the user, as it will be stored; refuses one the id rule would
    change (spaces, ``..``, empty parts)."""
    parts = name.split("/")
    if not name or any(_clean(x) != x for x in parts):
        raise ParameterError(
            "scene", f"{name!r} is not a usable scene id (letters, digits, -_. and /; e.g. "
            f"{'/'.join(_clean(x) for x in parts)!r})"
        )  # fmt: skip
    return name


# ----------------------------------------------------------------------------- overlap


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_outputs(
    outputs: dict[str, str | os.PathLike | None],
    inputs: Sequence[str | os.PathLike],
) -> list[str]:
    """Refuse outputs that are or contain an input; note outputs inside a folder input.

    Parameters
    ----------
    outputs : parameter name -> output path (file or folder; need not exist). None is skipped.
    inputs : the files and folders the run reads.

    Returns
    -------
    notes : one line per output that lies inside a folder input: it is left out of that input
        (pass the outputs as ``exclude`` to :func:`iter_files` / :func:`hash_tree`).

    Raises
    ------
    ParameterError
        An output is an input, or an input lies inside an output (its files could be
        overwritten or taken for outputs).
    """
    notes = []
    for param, out in outputs.items():
        if out is None:
            continue
        o = _real(out)
        for inp in inputs:
            i = _real(inp)
            if _inside(i, o):
                what = "is the input" if i == o else "contains the input"
                raise ParameterError(
                    param, f"{out} {what} {inp}; choose an output outside the inputs"
                )
            if Path(inp).is_dir() and _inside(o, i):
                notes.append(f"{out} is inside the input {inp}; it is skipped when reading {inp}")
    return notes


def iter_files(
    folder: str | os.PathLike, *, exclude: Iterable[str | os.PathLike] = ()
) -> Iterator[Path]:
    """Every file below ``folder`` (recursive), leaving out the subtrees in ``exclude`` and
    rainset's own staging folders (:data:`STAGING_NAME`)."""
    skip = {_real(e) for e in exclude}
    for dirpath, dirnames, filenames in os.walk(folder):
        d = Path(dirpath)
        dirnames[:] = [n for n in dirnames if n != STAGING_NAME and _real(d / n) not in skip]
        for n in filenames:
            if _real(d / n) not in skip:
                yield d / n


def hash_tree(path: str | os.PathLike, *, exclude: Iterable[str | os.PathLike] = ()) -> str:
    """sha256 of a source: a file's bytes, or for a folder the sha256 of the text made of one
    line ``"<relative posix path>\\t<file sha256>\\n"`` per file below it, sorted by path,
    leaving out the subtrees in ``exclude`` (outputs written inside the folder)."""
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    if p.is_dir():
        files = sorted((q.relative_to(p).as_posix(), q) for q in iter_files(p, exclude=exclude))
        h = hashlib.sha256()
        for rel, q in files:
            # surrogateescape: a name that is not UTF-8 hashes as its bytes
            h.update(f"{rel}\t{sha256_file(q)}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()
    raise InputError(f"{p}: source not found; cannot hash it.")


def check_destinations(pairs: Iterable[tuple[str | os.PathLike, str | os.PathLike]]) -> None:
    """Refuse a plan of ``(input file, output file)`` pairs in which two inputs would be written
    to one output (``a/x.png`` and ``b/x.png`` -> ``out/x.png``) or an output is an input.

    Raises
    ------
    InputError
        Names both inputs and the output.
    """
    pairs = list(pairs)
    inputs = {_real(src) for src, _ in pairs}
    seen: dict[Path, str] = {}
    for src, dst in pairs:
        d = _abs(dst)
        if d in seen:
            raise InputError(
                f"{seen[d]} and {src} would both be written to {dst}; give them separately "
                "with different output folders, or rename one."
            )
        if _real(dst) in inputs:
            raise InputError(f"{dst} is an input; writing it would overwrite it.")
        seen[d] = str(src)


# ----------------------------------------------------------------------------- sources


class SceneIdError(InputError):
    """Two inputs share a scene id with different contents, or the same contents under two
    ids. ``text`` is the message without the advice; ``params`` names the library parameters
    that resolve it (``root``, ``scene`` or ``allow_duplicates``)."""

    def __init__(self, text: str, params: tuple[str, ...]) -> None:
        self.text = text
        self.params = params
        super().__init__(f"{text}; see {' / '.join(params)}.")


@dataclass(frozen=True)
class SceneSource:
    """One input of a run: its scene id, its path as given, its resolved path, its sha256."""

    scene: str
    path: Path
    resolved: Path
    sha256: str


@dataclass
class SourcePlan:
    """What :func:`plan_sources` decided: the inputs to run, in order, and notes to show."""

    sources: list[SceneSource]
    notes: list[str] = field(default_factory=list)


def recorded_sources(dataset: str | os.PathLike | None) -> list[dict]:
    """The ``sources`` of ``dataset/rainset.json`` (empty when there is none or it is
    unreadable: the dataset writer reports that)."""
    if dataset is None:
        return []
    from rainset.dataset.layout import meta_path  # lazy: the format package imports this module

    meta = meta_path(dataset)
    try:
        sources = json.loads(meta.read_text(encoding="utf-8")).get("sources", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [s for s in sources if isinstance(s, dict) and isinstance(s.get("sha256"), str)]


def recorded_paths(src: dict, root: str | os.PathLike | None) -> list[Path]:
    """Where a recorded source may be: its ``path`` (resolved, or as given by older
    versions) and its ``relpath`` below the dataset ``root``."""
    out = []
    if isinstance(src.get("path"), str):
        out.append(Path(src["path"]))
    if root is not None and isinstance(src.get("relpath"), str):
        out.append(Path(root) / src["relpath"])
    return out


def plan_sources(
    inputs: Sequence[str | os.PathLike],
    *,
    root: str | os.PathLike | None = None,
    scene: str | None = None,
    ids: Sequence[str] | None = None,
    dataset: str | os.PathLike | None = None,
    allow_duplicates: bool = False,
    exclude: Iterable[str | os.PathLike] = (),
    hasher: Callable[[Path], str] | None = None,
) -> SourcePlan:
    """Scene ids and sha256 of a run's inputs, checked against each other and the dataset.

    Parameters
    ----------
    inputs : one path per scene (video, frame folder, image...), in run order.
    root : scene ids are paths relative to this folder (see :func:`scene_id`).
    scene : the id of the single input (only with one input).
    ids : ids decided by the caller (one per input) instead of :func:`scene_id`.
    dataset : the output dataset folder; its recorded sources take part in the checks, and an
        input recorded there under the same id and path is not hashed again.
    allow_duplicates : keep inputs whose contents another input (or recorded source) already
        has under another id; the same path given twice is then run once.
    exclude : outputs inside folder inputs, left out of their hashes.
    hasher : sha256 of one input (default :func:`hash_tree` with ``exclude``).

    Raises
    ------
    ParameterError
        ``scene`` with several inputs, a bad ``scene`` name, an input outside ``root``.
    SceneIdError
        One id for different contents (``params`` root / scene), or one content under two ids
        or the same path twice (``params`` allow_duplicates).
    """
    exclude = list(exclude)
    hasher = hasher or (lambda p: hash_tree(p, exclude=exclude))
    if scene is not None:
        if len(inputs) != 1:
            raise ParameterError("scene", f"names a single input's scene; {len(inputs)} inputs given")
        ids = [check_scene_name(scene)]
    elif ids is None:
        ids = [scene_id(p, root=root) for p in inputs]
    recorded = recorded_sources(dataset)
    by_id: dict[str, tuple[str, str]] = {}  # id -> (sha, file as shown)
    by_sha: dict[str, tuple[str, str, str]] = {}  # sha -> (id, file, file as shown)
    for s in recorded:
        if isinstance(s.get("scene"), str):
            where = f"{s.get('path', '?')} (recorded in {dataset})"
            by_id.setdefault(s["scene"], (s["sha256"], where))
            by_sha.setdefault(s["sha256"], (s["scene"], str(s.get("path", "?")), where))
    plan = SourcePlan([])
    seen: dict[tuple[Path, str], str] = {}
    for p, sid in zip(inputs, ids):
        p = Path(p)
        res = _real(p)
        if (res, sid) in seen:
            if not allow_duplicates:
                raise SceneIdError(
                    f"{p} is given twice (as {seen[res, sid]} and {p})", ("allow_duplicates",)
                )
            plan.notes.append(f"{p} is given twice; it is used once")
            continue
        seen[res, sid] = str(p)
        sha = next(
            (s["sha256"] for s in recorded if s.get("scene") == sid
             and any(_real(q) == res for q in recorded_paths(s, dataset))),
            None,
        )  # fmt: skip
        try:
            sha = sha or hasher(p)
        except OSError as exc:
            raise InputError(f"{p}: cannot read it to hash it ({exc.strerror or exc}).") from None
        if sid in by_id and by_id[sid][0] != sha:
            raise SceneIdError(
                f"{by_id[sid][1]} and {p} both have scene id {sid!r} but different contents",
                ("root", "scene"),
            )
        if sha in by_sha and by_sha[sha][0] != sid:
            other_id, other, shown = by_sha[sha]
            same = "is the same file as" if _real(other) == res else "has the same contents as"
            msg = f"{p} (scene {sid!r}) {same} {shown} (scene {other_id!r})"
            if not allow_duplicates:
                raise SceneIdError(msg, ("allow_duplicates",))
            plan.notes.append(msg + "; kept as two scenes")
        by_id.setdefault(sid, (sha, str(p)))
        by_sha.setdefault(sha, (sid, str(p), str(p)))
        plan.sources.append(SceneSource(sid, p, res, sha))
    return plan


def plan_inputs(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    scene: str | None = None,
    ids: Sequence[str] | None = None,
    allow_duplicates: bool = False,
    checked: Sequence[str | os.PathLike] | None = None,
) -> SourcePlan:
    """The checks every dataset writer runs before it writes: :func:`check_outputs` (``out``
    against ``checked``, default ``inputs``) then :func:`plan_sources` against the dataset in
    ``out``, with ``out`` left out of folder inputs. Notes of both are in the plan."""
    notes = check_outputs({"out": out}, list(inputs if checked is None else checked))
    plan = plan_sources(
        inputs, root=root, scene=scene, ids=ids, dataset=out,
        allow_duplicates=allow_duplicates, exclude=[out],
    )  # fmt: skip
    plan.notes[:0] = notes
    return plan
