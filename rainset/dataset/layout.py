"""Where everything of a rainset dataset lies: file names, folders, the image-extension rule.

The one module that knows them (``tests/test_format_owner.py`` keeps it so): pipelines ask it
for a sample's relative paths and write through :class:`~rainset.dataset.DatasetWriter`;
readers find the manifest with :func:`manifest_path`; the command line asks
:func:`is_dataset`. Every relative path here is ``/``-separated, relative to the dataset
folder. *Stems* have no extension: the writer appends the one :func:`image_suffix` picks and
returns the full path for the record.

Layout (docs/format.md)::

    rainset.json  manifest.jsonl  pairs.jsonl (timelapse)  review.json (build-gt, synth review)
    build-gt   rain/<scene>/<window>/f<frame>  clean/<scene>/<window>  mask/<...as rain>
               previews/<scene>/<window>_n<N>.png
    synth      rainy|mask|rain_map|residual/<photo stem>_v<k>  clean|semantic/<photo stem>
               tiers/<k>x<k>/<photo stem>  review/<photo stem>_<k>x<k>.png (tier sheets)
    pairs      frames|masks/<scene>/<index:06d>  clean/<scene>/<segment>  scenes/<scene>.json
               stats/<scene>.csv  sheets/<scene>[_s<k>].png  report.md
    import     rainy/<scene>/<id>  clean/<scene>/<key>
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

#: The dataset's description (kind, params, split rule, sources, counts).
META = "rainset.json"
#: One record a line: a sample (paired, clean) or a frame (timelapse).
MANIFEST = "manifest.jsonl"
#: Timelapse only: frame pairs.
PAIRS = "pairs.jsonl"
#: Review decisions (build-gt windows, synth tier choices), beside the manifest.
REVIEW = "review.json"
#: The time-lapse pipeline's human-readable report.
REPORT = "report.md"

# Folders (one name each; the pipelines' own choices, kept as they were in format version 1).
RAIN = "rain"  # build-gt's rainy frames
RAINY = "rainy"  # synth's and import's rainy images
CLEAN = "clean"
MASK = "mask"  # build-gt, synth
MASKS = "masks"  # pairs (foreground masks)
FRAMES = "frames"
RAIN_MAP = "rain_map"
RESIDUAL = "residual"
TIERS = "tiers"
SEMANTIC = "semantic"
PREVIEWS = "previews"
REVIEW_SHEETS = "review"
SCENES = "scenes"
STATS = "stats"
SHEETS = "sheets"

#: Extensions the writer appends: lossless and lossy.
PNG, JPG = ".png", ".jpg"
IMAGE_FORMATS = ("png", "jpg")


# ----------------------------------------------------------------------------- files


def is_dataset(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding ``rainset.json`` (a dataset, finished or not)."""
    p = Path(path)
    return p.is_dir() and (p / META).is_file()


def meta_path(root: str | os.PathLike) -> Path:
    return Path(root) / META


def manifest_path(root: str | os.PathLike) -> Path:
    return Path(root) / MANIFEST


def pairs_path(root: str | os.PathLike) -> Path:
    return Path(root) / PAIRS


def review_path(root: str | os.PathLike) -> Path:
    """The review file of the dataset (or run) at ``root``."""
    return Path(root) / REVIEW


def report_path(root: str | os.PathLike) -> Path:
    return Path(root) / REPORT


# ----------------------------------------------------------------------------- extension rule


def image_suffix(image_format: str, image: Any = None, *, lossless: bool = False) -> str:
    """The extension an image gets in a dataset of ``image_format``: ``".png"`` or ``".jpg"``.

    JPEG only for an RGB 8-bit image in a ``"jpg"`` dataset written without ``lossless``;
    masks (bool), single-channel images (labels, grey maps) and 16-bit images are always PNG,
    as JPEG would alter label values and mask edges. ``image=None`` means an RGB 8-bit image.
    """
    if image_format == "png" or lossless:
        return PNG
    if image is not None:
        arr = np.asarray(image)
        if arr.ndim == 2 or arr.dtype in (np.bool_, np.uint16):
            return PNG
    return JPG


def image_relpath(stem: str, image_format: str, image: Any = None, *, lossless: bool = False) -> str:
    """``stem`` plus the extension :func:`image_suffix` picks."""
    return stem + image_suffix(image_format, image, lossless=lossless)


def kept_suffix(suffix: str) -> str:
    """The extension a file placed as is (import ``keep``) gets: its own, ``.jpeg`` as ``.jpg``."""
    suffix = suffix.lower()
    return JPG if suffix == ".jpeg" else suffix


def relpath_error(value: Any) -> str | None:
    """Why ``value`` is not a usable relative path inside a dataset, or None."""
    if not isinstance(value, str) or not value:
        return f"must be a non-empty relative path string, got {value!r}"
    p = PurePosixPath(value)
    if "\\" in value or p.is_absolute() or ".." in p.parts or value[1:2] == ":":
        return f"must be a relative '/'-separated path inside the dataset, got {value!r}"
    return None


def relative(path: Path, root: Path) -> str:
    """``path`` relative to the dataset ``root`` (``..`` where needed), ``/``-separated."""
    try:
        return Path(os.path.relpath(path, os.path.realpath(root))).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()


def _join(*parts: str) -> str:
    return "/".join(parts)


# ----------------------------------------------------------------------------- build-gt


def gt_clean(scene: str, window: str) -> str:
    """Stem of a window's clean image (``window`` is its name, ``w00``)."""
    return _join(CLEAN, scene, window)


def gt_rainy(sample_id: str) -> str:
    """Stem of a rainy frame; ``sample_id`` is ``<scene>/<window>/f<frame>``."""
    return _join(RAIN, sample_id)


def gt_mask(sample_id: str) -> str:
    """Stem of a rainy frame's rain mask."""
    return _join(MASK, sample_id)


def gt_preview(scene: str, window: str, n_frames: int) -> str:
    """Relative path (with extension: always PNG) of a candidate's preview sheet."""
    return _join(PREVIEWS, scene, f"{window}_n{n_frames:03d}{PNG}")


def previews_dir(root: str | os.PathLike) -> Path:
    return Path(root) / PREVIEWS


# ----------------------------------------------------------------------------- synth


def synth_clean(photo: str) -> str:
    """Stem of a photo's clean image (``photo`` is the photo's stem)."""
    return _join(CLEAN, photo)


def synth_tier(tier: str, photo: str) -> str:
    """Stem of a photo's low-pass tier (``tier`` is its name, ``5x5``)."""
    return _join(TIERS, tier, photo)


def synth_semantic(photo: str) -> str:
    return _join(SEMANTIC, photo)


def synth_rainy(sample: str) -> str:
    """Stem of a rainy variant (``sample`` is ``<photo stem>_v<k>``); likewise the three below."""
    return _join(RAINY, sample)


def synth_mask(sample: str) -> str:
    return _join(MASK, sample)


def synth_rain_map(sample: str) -> str:
    return _join(RAIN_MAP, sample)


def synth_residual(sample: str) -> str:
    return _join(RESIDUAL, sample)


def synth_review_sheet(root: str | os.PathLike, photo: str, tier: str) -> Path:
    """Where the tier-choice sheet of one photo and tier goes (always PNG)."""
    return Path(root) / REVIEW_SHEETS / f"{photo}_{tier}{PNG}"


# ----------------------------------------------------------------------------- pairs (timelapse)


def tl_frame(scene: str, index: int) -> str:
    """Stem of a time-lapse frame."""
    return _join(FRAMES, scene, f"{index:06d}")


def tl_mask(scene: str, index: int) -> str:
    """Stem of a time-lapse frame's foreground mask."""
    return _join(MASKS, scene, f"{index:06d}")


def tl_clean(scene: str, segment: str) -> str:
    """Stem of a segment's pseudo ground truth (``segment`` is its tag, ``s00``)."""
    return _join(CLEAN, scene, segment)


def tl_scene_result(root: str | os.PathLike, scene: str) -> Path:
    """A scene's finished-result file (resume: the scene is not decoded again)."""
    return Path(root) / SCENES / f"{scene}.json"


def tl_stats(scene: str) -> str:
    """Relative path of a scene's per-frame score table."""
    return _join(STATS, f"{scene}.csv")


def tl_sheet(scene: str, segment: int | None = None) -> str:
    """Relative path of a scene's contact sheet (per kept segment, or one when none kept)."""
    return _join(SHEETS, f"{scene}{PNG}" if segment is None else f"{scene}_s{segment:02d}{PNG}")


# ----------------------------------------------------------------------------- import


def imported_rainy(scene: str, sample_id: str) -> str:
    return _join(RAINY, scene, sample_id)


def imported_clean(scene: str, key: str) -> str:
    return _join(CLEAN, scene, key)
