"""The format's rules: kinds, splits, required keys, the split rule, record and meta checks.

Pure functions of parsed JSON (no disk access but :func:`hash_source`): the writer, the
reader and :func:`~rainset.dataset.check` share them, so what the writer refuses is what
``check`` reports.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rainset._checks import require_finite
from rainset.dataset.layout import IMAGE_FORMATS, relpath_error
from rainset.errors import ParameterError
from rainset.inputs import hash_tree
from rainset.options import OutputOptions  # the defaults live there

FORMAT_VERSION = 1
#: Split names a record may carry. ``val`` is empty unless a :class:`SplitRule` asks for it.
SPLITS = ("train", "val", "test")
#: Dataset kinds.
#: ``clean`` holds clean images only (pseudo ground truth for evaluation, ``build-gt --write clean``).
KINDS = ("paired", "timelapse", "clean")

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
    test_fraction: float = OutputOptions.test_fraction
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
        msg = relpath_error(value)
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
    if meta.get("image_format") not in IMAGE_FORMATS:
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


def _counts(n: int, per_split: Counter, per_scene: Counter, n_pairs: int) -> dict:
    return {
        "samples": n,
        "per_split": {s: per_split.get(s, 0) for s in SPLITS},
        "per_scene": dict(sorted(per_scene.items())),
        "pairs": n_pairs,
    }
