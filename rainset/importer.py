"""Bring existing paired deraining sets (a rain folder and a clean folder) into the format.

Files pair up by a *key* taken from each file's path relative to its folder (without the
suffix): by default the parent folders plus the last number in the file name, so
``rain-001.png`` and ``norain-001.png`` (Rain100L) or ``00001.jpg`` in both folders (NTURain)
pair up. A custom ``key`` regex is searched in that relative path; its first group (or the
whole match) is the key. Several rainy files may share one clean image (GT-Rain style).

Scenes come from a ``scene`` regex on the rainy file's relative path, from consecutive chunks of
``scene_every`` pairs in natural order (frames of one sequence), or, by default, from the clean
image: the rainy files of one clean image form a scene. Splits are by scene
(:class:`rainset.dataset.SplitRule`).
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from rainset._encode import EncodePool
from rainset.dataset import DatasetWriter, SplitRule, layout
from rainset.errors import InputError, ParameterError
from rainset.image import is_image_path, read_image
from rainset.inputs import iter_files, natural_sorted, plan_inputs, scene_id
from rainset.pathnames import check_id, check_name

__all__ = ["PairPlan", "PairedPlan", "default_scenes", "plan_paired", "import_paired"]

logger = logging.getLogger(__name__)

_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


@dataclass(frozen=True)
class PairPlan:
    """One rainy file, its clean file and its scene."""

    id: str  # the rainy file's relative path without suffix
    scene: str
    key: str
    rainy: Path
    clean: Path
    rainy_rel: str  # relative to the rain folder, as recorded in the manifest
    clean_rel: str  # relative to the clean folder


class PairedPlan(list):
    """The list of :class:`PairPlan` of :func:`plan_paired`, with how its scenes were formed:
    ``reason`` (one line) and, for the default grouping, ``sources`` ((scene id, the file or
    folder whose sha256 stands for the scene): a rainy sub-folder, the rain folder of a
    sequence, or the clean image of a one-image scene)."""

    reason: str = ""
    sources: list[tuple[str, Path]]

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.sources = []


# A flat folder is one sequence when its clean images' neighbours correlate at least this much
# (normalised cross-correlation of 32x32 luma thumbnails; frames of one static or slowly
# moving shot score > 0.9, unrelated photos around 0-0.5).
SEQUENCE_SIMILARITY = 0.8
_NEIGHBOURS = 16  # neighbour pairs compared, spread over the folder


def _thumb(path: Path) -> np.ndarray:
    img = read_image(path)
    if img.ndim == 3:
        img = img[..., :3].astype(np.float32).mean(axis=2)
    t = cv2.resize(img.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    t -= t.mean()
    return t / (np.linalg.norm(t) + 1e-6)


def _similarity(cleans: list[Path]) -> float:
    """Median correlation of up to ``_NEIGHBOURS`` neighbouring pairs of ``cleans``."""
    n = len(cleans) - 1
    picks = sorted({round(j * (n - 1) / max(1, _NEIGHBOURS - 1)) for j in range(min(n, _NEIGHBOURS))})
    return float(np.median([float((_thumb(cleans[i]) * _thumb(cleans[i + 1])).sum()) for i in picks]))


def _numbered(names: list[str]) -> bool:
    """Every name has a number, all names follow one pattern, numbers rise in small steps."""
    if any(_LAST_NUMBER.search(n) is None for n in names):
        return False
    if len({_LAST_NUMBER.sub("#", n) for n in names}) != 1:
        return False
    nums = [int(_LAST_NUMBER.search(n).group(1)) for n in names]
    steps = np.diff(nums)
    return bool(len(steps) == 0 or (np.all(steps > 0) and np.median(steps) <= 2))


def default_scenes(
    rain_dir: str | os.PathLike,
    matched: list[tuple[str, Path, Path]],
    *,
    root: str | os.PathLike | None = None,
) -> tuple[list[str], str, list[tuple[str, Path]]]:
    """The default scenes of matched pairs ``(rainy relative path, rainy file, clean file)``.

    A rainy sub-folder is one scene; the files directly in ``rain_dir`` are one scene when
    they are consecutive frames of one sequence (numbered names and neighbouring clean images
    that look alike, :data:`SEQUENCE_SIMILARITY`), else one scene per clean image.

    Returns
    -------
    scenes : one scene id per matched pair.
    reason : one line saying which grouping was chosen and why.
    sources : (scene id, the file or folder that stands for it), hashed into the dataset.
    """
    rain_dir = Path(rain_dir)
    flat = [(i, clean) for i, (rel, _, clean) in enumerate(matched) if "/" not in rel]
    scenes: list[str] = [""] * len(matched)
    sources: list[tuple[str, Path]] = []
    folders: dict[Path, str] = {}
    for i, (rel, _, _) in enumerate(matched):
        if "/" in rel:
            folder = rain_dir / PurePosixPath(rel).parent
            if folder not in folders:
                folders[folder] = scene_id(folder, root=root)
                sources.append((folders[folder], folder))
            scenes[i] = folders[folder]
    reasons = [f"{len(folders)} sub-folder(s), one scene each"] if folders else []
    if flat:
        cleans = list(dict.fromkeys(c for _, c in flat))  # distinct, in order
        names = [c.stem for c in cleans]
        seq, why = False, ""
        if len(cleans) == 1:
            seq, why = True, "they share one clean image"
        elif not _numbered(names):
            why = "their names are not consecutive numbers"
        else:
            sim = _similarity(cleans)
            seq = sim >= SEQUENCE_SIMILARITY
            look = "look alike" if seq else "differ"
            why = f"numbered names whose neighbouring clean images {look}, similarity {sim:.2f}"
        if seq:
            sid = scene_id(rain_dir, root=root)
            for i, _ in flat:
                scenes[i] = sid
            sources.append((sid, rain_dir))
            reasons.append(f"{len(flat)} files in {rain_dir} are one sequence, one scene ({why})")
        else:
            for i, clean in flat:
                scenes[i] = scene_id(clean)
            sources += [(scene_id(c), c) for c in cleans]
            reasons.append(f"{len(cleans)} unrelated images in {rain_dir}, one scene per clean image ({why})")
    return scenes, "; ".join(reasons), sources


def _list_images(folder: Path, exclude=()) -> list[tuple[str, Path]]:
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder.")
    out = []
    for p in iter_files(folder, exclude=exclude):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and is_image_path(p) and not any(s.startswith(".") for s in rel.split("/")):
            check_name(p, rel)
            out.append((str(PurePosixPath(rel).with_suffix("")), p))
    if not out:
        raise InputError(f"{folder}: no image files in this folder.")
    return natural_sorted(out, key=lambda t: t[0])


def _key_of(rel: str, pattern: re.Pattern | None) -> str | None:
    if pattern is None:
        path = PurePosixPath(rel)
        m = _LAST_NUMBER.search(path.name)
        name = m.group(1) if m else path.name
        return name if str(path.parent) == "." else f"{path.parent}/{name}"
    m = pattern.search(rel)
    if m is None:
        return None
    return m.group(1) if pattern.groups else m.group(0)


def _compile(regex: str | None, what: str) -> re.Pattern | None:
    if regex is None:
        return None
    try:
        return re.compile(regex)
    except re.error as exc:
        raise ParameterError(what, f"not a valid regular expression ({exc}): {regex!r}") from None


def plan_paired(
    rain_dir: str | os.PathLike,
    clean_dir: str | os.PathLike,
    *,
    key: str | None = None,
    scene: str | None = None,
    scene_every: int | None = None,
    root: str | os.PathLike | None = None,
    exclude: Iterable[str | os.PathLike] = (),
) -> PairedPlan:
    """Match rainy files to clean files and assign scenes.

    Parameters
    ----------
    rain_dir, clean_dir : folders of images (searched recursively; hidden files skipped).
    key : regex searched in each relative path (no suffix); group 1 or the match is the key.
        None: parent folders plus the file name's last number (the name when it has none).
    scene : regex searched in the rainy file's relative path; group 1 or the match is the
        scene. Not with ``scene_every``.
    scene_every : consecutive chunks of this many pairs, in natural order of the rainy paths,
        form scenes ``scene-000``, ``scene-001``, ...
    root : for the default scenes, folder ids are paths relative to ``root``
        (:func:`rainset.inputs.scene_id`).
    exclude : folders left out of both listings (an output written inside them).

    Returns
    -------
    plans : PairedPlan (a list of PairPlan, in natural order of the rainy paths) whose
        ``reason`` says how scenes were formed. Without ``scene`` or ``scene_every`` (see
        :func:`default_scenes`): rainy files in a sub-folder form one scene per sub-folder
        (named by :func:`rainset.inputs.scene_id`); files directly in ``rain_dir`` form one
        scene (named after ``rain_dir``) when they are consecutive frames of one sequence
        (numbered names whose neighbouring clean images look alike), else one scene per
        clean image (named after the clean file).

    Raises
    ------
    ParameterError
        Bad regex, both ``scene`` and ``scene_every``, ``scene_every < 1``, or a key or scene
        that cannot be a path inside the dataset (a regex capturing ``..``).
    InputError
        A folder is missing or empty; two clean files share a key; no rainy file has a clean
        partner; a rainy file does not match ``scene``.
    """
    key_re = _compile(key, "key")
    scene_re = _compile(scene, "scene")
    if scene is not None and scene_every is not None:
        raise ParameterError("scene_every", "give scene or scene_every, not both")
    if scene_every is not None and scene_every < 1:
        raise ParameterError("scene_every", f"must be >= 1, got {scene_every}")
    rain_dir, clean_dir = Path(rain_dir), Path(clean_dir)
    clean_by_key: dict[str, Path] = {}
    clean_rel: dict[str, str] = {}
    exclude = list(exclude)
    for rel, path in _list_images(clean_dir, exclude):
        k = _key_of(rel, key_re)
        if k is None:
            continue
        if k in clean_by_key:
            raise InputError(
                f"{path}: its key {k!r} is also the key of {clean_by_key[k]}; give a `key` "
                "regex that tells clean images apart."
            )
        clean_by_key[k] = path
        clean_rel[k] = path.relative_to(clean_dir).as_posix()
    if not clean_by_key:
        raise InputError(f"{clean_dir}: no clean file matches the key regex {key!r}.")
    matched: list[tuple[str, str, Path]] = []
    unmatched = []
    for rel, path in _list_images(rain_dir, exclude):
        k = _key_of(rel, key_re)
        if k is None or k not in clean_by_key:
            unmatched.append(rel)
        else:
            matched.append((rel, k, path))
    if not matched:
        raise InputError(
            f"{rain_dir}: no rainy file has a clean partner in {clean_dir} (keys such as "
            f"{_key_of(unmatched[0], key_re)!r} found no match); check `key`."
        )
    if unmatched:
        logger.warning(
            "%s: %d rainy files have no clean partner and are skipped (first: %s)",
            rain_dir,
            len(unmatched),
            unmatched[0],
        )
    plans = PairedPlan()
    default = None
    if scene_every is None and scene_re is None:
        default, plans.reason, plans.sources = default_scenes(
            rain_dir, [(rel, path, clean_by_key[k]) for rel, k, path in matched], root=root
        )
    elif scene_every is not None:
        plans.reason = f"scenes of {scene_every} consecutive pairs (scene_every)"
    else:
        plans.reason = "scenes from the scene regex"
    for i, (rel, k, path) in enumerate(matched):
        if scene_every is not None:
            sc = f"scene-{i // scene_every:03d}"
        elif scene_re is not None:
            m = scene_re.search(rel)
            if m is None:
                raise InputError(f"{path}: its path {rel!r} does not match the scene regex.")
            sc = m.group(1) if scene_re.groups else m.group(0)
        else:
            sc = default[i]
        plans.append(
            PairPlan(
                rel,
                sc,
                k,
                path,
                clean_by_key[k],
                path.relative_to(rain_dir).as_posix(),
                clean_rel[k],
            )
        )
    for p in plans:  # a regex may capture what cannot be a dataset path ("..", "a/")
        check_id(p.key, "key", "key")
        check_id(p.scene, "scene" if scene_re is not None else "root", "scene")
    return plans


def import_paired(
    plans: list[PairPlan],
    out: str | os.PathLike,
    *,
    split_rule: SplitRule = SplitRule(),
    image_format: str = "png",
    params: dict | None = None,
    sources: tuple[tuple[str | os.PathLike, str], ...] = (),
    allow_duplicate_sources: bool = False,
    link: str | None = None,
    tool: str = "rainset import paired",
) -> Iterator[str]:
    """Write planned pairs as a paired dataset; rerunning resumes.

    Parameters
    ----------
    plans : from :func:`plan_paired`.
    out : the dataset folder.
    split_rule : scene split; its ``test_scenes`` must be scenes of the plan.
    image_format : ``"png"`` (lossless), ``"jpg"``, or ``"keep"``: every file placed as it is
        (``link``), never re-encoded, except a JPEG whose EXIF orientation is not 1, written
        upright as PNG (the record's ``orientation`` says so); see
        :func:`rainset.exchange._common.keep_image`.
    link : with ``"keep"``: ``"hardlink"``, ``"symlink"``, ``"copy"`` or None (hard links where
        possible, else copies).
    tool : the command recorded in ``rainset.json``.
    params : recorded in ``rainset.json`` (the matching options).
    sources : (path, provenance note) of the input folders, hashed into ``rainset.json``.
        ``out`` may not be or contain one (:func:`rainset.inputs.check_outputs`).
    allow_duplicate_sources : keep scenes whose contents another scene (or a source recorded
        in ``out``) has under another id; refused otherwise (``plans.sources``, see
        :func:`rainset.inputs.plan_sources`).

    Yields
    ------
    id : each sample id once it is written (skipped ids of a resumed run too).

    Raises
    ------
    ValueError
        A test scene that is not in the plan.
    InputError
        An unreadable image, or a rainy image whose size differs from its clean one.
    SceneIdError
        One scene id for different contents, or the same contents under two ids.
    """
    scenes = sorted({p.scene for p in plans})
    missing = [s for s in split_rule.test_scenes if s not in scenes]
    if missing:
        shown = ", ".join(scenes[:20]) + (" ..." if len(scenes) > 20 else "")
        raise ValueError(f"test scenes {missing} are not scenes of this import (scenes: {shown})")
    scene_sources = getattr(plans, "sources", [])
    planned = plan_inputs(
        [path for _, path in scene_sources], out, ids=[sid for sid, _ in scene_sources],
        allow_duplicates=allow_duplicate_sources, checked=[path for path, _ in sources],
    )  # fmt: skip
    note = sources[0][1] if sources else "imported paired folders"
    check_headers(plans)
    keep = image_format == "keep"
    if link is not None and not keep:
        raise ParameterError("link", "places files as they are, so it needs image_format keep")
    if keep:
        from rainset.exchange._common import Placer, keep_image

        placer = Placer(link)
    with EncodePool() as enc, DatasetWriter(  # images encode on every core (rainset._encode)
        out,
        kind="paired",
        params={**(params or {}), **({"format": "keep"} if keep else {})},
        split_rule=split_rule,
        image_format="png" if keep else image_format,  # keep: each file's own extension
        tool=tool,
        encoder=enc,
    ) as w:
        for path, what in sources:
            w.add_source(path, note=what)
        for src in planned.sources:
            w.add_source(src.path, note=note, sha256=src.sha256, scene=src.scene)
        written: dict[Path, str] = {}
        clean_shape: dict[Path, tuple[int, ...]] = {}  # of the clean images written (not keep)
        later: deque[dict] = deque()

        def add(rec: dict) -> str:
            w.add(rec)
            return rec["id"]

        for p in plans:
            if w.has(p.id):
                yield p.id
                continue
            if keep:  # sizes already agree (check_headers); nothing is decoded
                extra = {}
                clean_rel = written.get(p.clean)
                if clean_rel is None:
                    clean_rel, o = keep_image(placer, p.clean, w.root,
                                              layout.imported_clean(p.scene, _safe(p.key)))
                    written[p.clean] = clean_rel
                    extra.update({"clean_orientation": o} if o != 1 else {})
                rainy_rel, o = keep_image(placer, p.rainy, w.root, layout.imported_rainy(p.scene, p.id))
                extra.update({"orientation": o} if o != 1 else {})
                w.add({"id": p.id, "scene": p.scene, "rainy": rainy_rel, "clean": clean_rel,
                       "source": {"rainy": p.rainy_rel, "clean": p.clean_rel}, **extra})
                yield p.id
                continue
            rainy = read_image(p.rainy)
            clean_rel = written.get(p.clean)
            # A clean image shared by several rainy ones is decoded once (its shape kept).
            clean = read_image(p.clean) if clean_rel is None else None
            shape = clean_shape[p.clean] if clean is None else clean.shape
            if shape != rainy.shape:
                raise InputError(
                    f"{p.rainy}: size {rainy.shape[1]}x{rainy.shape[0]} differs from its clean "
                    f"image {p.clean} ({shape[1]}x{shape[0]})."
                )
            if clean_rel is None:
                clean_rel = w.write_image(layout.imported_clean(p.scene, _safe(p.key)), clean)
                written[p.clean] = clean_rel
                clean_shape[p.clean] = clean.shape
            rainy_rel = w.write_image(layout.imported_rainy(p.scene, p.id), rainy)
            # Added a few pairs later, so the next pairs decode while these encode; add waits
            # for the record's images, so no line names an image not yet on disk.
            later.append(
                {
                    "id": p.id,
                    "scene": p.scene,
                    "rainy": rainy_rel,
                    "clean": clean_rel,
                    "source": {"rainy": p.rainy_rel, "clean": p.clean_rel},
                }
            )
            while len(later) > enc.threads:
                yield add(later.popleft())
        while later:
            yield add(later.popleft())


def check_headers(plans: list[PairPlan]) -> None:
    """Read every planned image's header before anything is written: an unreadable file or a
    rainy/clean size mismatch fails the import now, not after the pairs before it."""
    from rainset.dataset import image_size

    sizes: dict[Path, tuple[int, int]] = {}
    for p in plans:
        for path in (p.rainy, p.clean):
            if path not in sizes:
                sizes[path] = image_size(path, decode=False)
        if sizes[p.rainy] != sizes[p.clean]:
            (h, w), (ch, cw) = sizes[p.rainy], sizes[p.clean]
            raise InputError(
                f"{p.rainy}: size {w}x{h} differs from its clean image {p.clean} ({cw}x{ch})."
            )


def _safe(key: str) -> str:
    """A key as a relative path stem (keys are paths or path pieces)."""
    return "/".join(part or "_" for part in key.replace("\\", "/").split("/") if part != "..")
