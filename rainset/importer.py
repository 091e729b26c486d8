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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rainset.dataset import DatasetWriter, SplitRule
from rainset.errors import InputError
from rainset.image import is_image_path, read_image

__all__ = ["PairPlan", "plan_paired", "import_paired"]

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


def _natural(s: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", s))


def _list_images(folder: Path) -> list[tuple[str, Path]]:
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder.")
    out = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and is_image_path(p) and not any(s.startswith(".") for s in rel.split("/")):
            out.append((str(PurePosixPath(rel).with_suffix("")), p))
    if not out:
        raise InputError(f"{folder}: no image files in this folder.")
    return sorted(out, key=lambda t: _natural(t[0]))


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
        raise ValueError(f"{what} is not a valid regular expression ({exc}): {regex!r}") from None


def plan_paired(
    rain_dir: str | os.PathLike,
    clean_dir: str | os.PathLike,
    *,
    key: str | None = None,
    scene: str | None = None,
    scene_every: int | None = None,
) -> list[PairPlan]:
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

    Returns
    -------
    plans : list of PairPlan, in natural order of the rainy paths.

    Raises
    ------
    ValueError
        Bad regex, both ``scene`` and ``scene_every``, or ``scene_every < 1``.
    InputError
        A folder is missing or empty; two clean files share a key; no rainy file has a clean
        partner; a rainy file does not match ``scene``.
    """
    key_re = _compile(key, "key")
    scene_re = _compile(scene, "scene")
    if scene is not None and scene_every is not None:
        raise ValueError("give scene or scene_every, not both")
    if scene_every is not None and scene_every < 1:
        raise ValueError(f"scene_every must be >= 1, got {scene_every}")
    rain_dir, clean_dir = Path(rain_dir), Path(clean_dir)
    clean_by_key: dict[str, Path] = {}
    clean_rel: dict[str, str] = {}
    for rel, path in _list_images(clean_dir):
        k = _key_of(rel, key_re)
        if k is None:
            continue
        if k in clean_by_key:
            raise InputError(
                f"{path}: its key {k!r} is also the key of {clean_by_key[k]}; give a --key "
                "regex that tells clean images apart."
            )
        clean_by_key[k] = path
        clean_rel[k] = path.relative_to(clean_dir).as_posix()
    if not clean_by_key:
        raise InputError(f"{clean_dir}: no clean file matches the key regex {key!r}.")
    matched: list[tuple[str, str, Path]] = []
    unmatched = []
    for rel, path in _list_images(rain_dir):
        k = _key_of(rel, key_re)
        if k is None or k not in clean_by_key:
            unmatched.append(rel)
        else:
            matched.append((rel, k, path))
    if not matched:
        raise InputError(
            f"{rain_dir}: no rainy file has a clean partner in {clean_dir} (keys such as "
            f"{_key_of(unmatched[0], key_re)!r} found no match); check --key."
        )
    if unmatched:
        logger.warning(
            "%s: %d rainy files have no clean partner and are skipped (first: %s)",
            rain_dir,
            len(unmatched),
            unmatched[0],
        )
    plans = []
    for i, (rel, k, path) in enumerate(matched):
        if scene_every is not None:
            sc = f"scene-{i // scene_every:03d}"
        elif scene_re is not None:
            m = scene_re.search(rel)
            if m is None:
                raise InputError(f"{path}: its path {rel!r} does not match the scene regex.")
            sc = m.group(1) if scene_re.groups else m.group(0)
        else:
            sc = k
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
    return plans


def import_paired(
    plans: list[PairPlan],
    out: str | os.PathLike,
    *,
    split_rule: SplitRule = SplitRule(),
    image_format: str = "png",
    params: dict | None = None,
    sources: tuple[tuple[str | os.PathLike, str], ...] = (),
) -> Iterator[str]:
    """Write planned pairs as a paired dataset; rerunning resumes.

    Parameters
    ----------
    plans : from :func:`plan_paired`.
    out : the dataset folder.
    split_rule : scene split; its ``test_scenes`` must be scenes of the plan.
    image_format : ``"png"`` (lossless) or ``"jpg"``.
    params : recorded in ``rainset.json`` (the matching options).
    sources : (path, provenance note) of the input folders, hashed into ``rainset.json``.

    Yields
    ------
    id : each sample id once it is written (skipped ids of a resumed run too).

    Raises
    ------
    ValueError
        A test scene that is not in the plan.
    InputError
        An unreadable image, or a rainy image whose size differs from its clean one.
    """
    scenes = sorted({p.scene for p in plans})
    missing = [s for s in split_rule.test_scenes if s not in scenes]
    if missing:
        shown = ", ".join(scenes[:20]) + (" ..." if len(scenes) > 20 else "")
        raise ValueError(f"test scenes {missing} are not scenes of this import (scenes: {shown})")
    with DatasetWriter(
        out,
        kind="paired",
        params=params or {},
        split_rule=split_rule,
        image_format=image_format,
        tool="rainset import paired",
    ) as w:
        for path, note in sources:
            w.add_source(path, note=note)
        written: dict[Path, str] = {}
        for p in plans:
            if w.has(p.id):
                yield p.id
                continue
            rainy = read_image(p.rainy)
            clean_rel = written.get(p.clean)
            clean = read_image(p.clean)
            if clean.shape != rainy.shape:
                raise InputError(
                    f"{p.rainy}: size {rainy.shape[1]}x{rainy.shape[0]} differs from its clean "
                    f"image {p.clean} ({clean.shape[1]}x{clean.shape[0]})."
                )
            if clean_rel is None:
                clean_rel = w.write_image(f"clean/{p.scene}/{_safe(p.key)}", clean)
                written[p.clean] = clean_rel
            rainy_rel = w.write_image(f"rainy/{p.scene}/{p.id}", rainy)
            w.add(
                {
                    "id": p.id,
                    "scene": p.scene,
                    "rainy": rainy_rel,
                    "clean": clean_rel,
                    "source": {"rainy": p.rainy_rel, "clean": p.clean_rel},
                }
            )
            yield p.id


def _safe(key: str) -> str:
    """A key as a relative path stem (keys are paths or path pieces)."""
    return "/".join(part or "_" for part in key.replace("\\", "/").split("/") if part != "..")
