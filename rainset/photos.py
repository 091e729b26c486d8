"""Clean photographs for :mod:`rainset.synth`: the bundled ones, a folder of them, loading.

A photo's scene id is its path relative to the folder (posix), so adding photos reseeds nothing
and every output path is made from it. Split out of :mod:`rainset.synth` (which re-exports
every name) to keep that module to the rendering and the dataset run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from rainset.dataset import image_size
from rainset.errors import InputError
from rainset.image import IMAGE_SUFFIXES, exif_orientation, is_image_path, read_image, to_uint8
from rainset.inputs import iter_files
from rainset.pathnames import check_name

__all__ = [
    "BUNDLED_PHOTOS",
    "Photo",
    "bundled_photos",
    "check_photos",
    "find_photos",
    "find_semantic",
    "load_photo",
    "photo_orientation",
]

#: scikit-image's bundled natural RGB photos with clear licences, and their provenance
#: (from the docstrings of ``skimage.data``). Scene ids are ``skimage/<file>``.
BUNDLED_PHOTOS: dict[str, str] = {
    "astronaut.png": "scikit-image data: Eileen Collins, NASA Great Images; public domain",
    "chelsea.png": "scikit-image data: Chelsea the cat; CC0 by Stefan van der Walt",
    "coffee.png": "scikit-image data: coffee cup, Pikolo Espresso Bar; CC0 by Rachel Michetti",
    "rocket.jpg": "scikit-image data: DSCOVR launch on Falcon 9, SpaceX; public domain",
}


@dataclass(frozen=True)
class Photo:
    """A clean photograph: its scene id (relative posix path), file and provenance note."""

    key: str
    path: Path
    note: str = ""

    @property
    def stem(self) -> str:
        """The key without its suffix: the base of every file name made from the photo."""
        return str(PurePosixPath(self.key).with_suffix(""))


def bundled_photos() -> list[Photo]:
    """scikit-image's bundled CC0 / public-domain photos (no download; see BUNDLED_PHOTOS).

    Raises
    ------
    InputError
        None of them is in the installed scikit-image.
    """
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    photos = [
        Photo(f"skimage/{name}", folder / name, note)
        for name, note in BUNDLED_PHOTOS.items()
        if (folder / name).is_file()
    ]
    if not photos:
        raise InputError(
            f"{folder}: scikit-image's bundled photos are missing; pass a folder of clean photos."
        )
    return photos


def find_photos(folder: str | os.PathLike, *, exclude: Iterable[str | os.PathLike] = ()) -> list[Photo]:
    """Every image below ``folder`` (recursive, hidden files skipped), sorted by relative path.

    ``exclude``: folders left out (an output dataset written inside ``folder``, see
    :func:`rainset.inputs.check_outputs`).

    Raises
    ------
    InputError
        Not a folder, no images, or two images that differ only in suffix (``a.png``,
        ``a.jpg``: their outputs would collide).
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of clean photos.")
    photos, stems = [], {}
    for p in sorted(iter_files(root, exclude=exclude)):
        rel = p.relative_to(root).as_posix()
        if (
            not p.is_file()
            or not is_image_path(p)
            or any(s.startswith(".") for s in rel.split("/"))
        ):
            continue
        check_name(p, rel)  # rel becomes the sample id and part of every output path
        photo = Photo(rel, p)
        if photo.stem in stems:
            raise InputError(
                f"{root}: {stems[photo.stem]} and {rel} differ only in suffix; rename one."
            )
        stems[photo.stem] = rel
        photos.append(photo)
    if not photos:
        raise InputError(
            f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})."
        )
    photos.sort(key=lambda ph: ph.key)
    return photos


def photo_orientation(path: str | os.PathLike) -> int:
    """The EXIF orientation :func:`load_photo` applies to ``path`` (1 = none)."""
    with open(path, "rb") as f:
        return exif_orientation(f.read(1 << 20))


def load_photo(path: str | os.PathLike, *, max_size: int | None = None) -> np.ndarray:
    """Read a photo as (H, W, 3) uint8 RGB (16-bit scaled down), shrunk so its longer side is
    at most ``max_size`` (area interpolation) when given."""
    img = to_uint8(read_image(path))
    h, w = img.shape[:2]
    if max_size is not None and max(h, w) > max_size:
        s = max_size / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return img


def check_photos(photos: list[Photo]) -> None:
    """Read every photo's header, so that an unreadable one fails a run before anything is
    written (not after the photos before it).

    Raises
    ------
    InputError
        A photo that is missing or whose header cannot be read.
    """
    for photo in photos:
        image_size(photo.path, decode=False)


def find_semantic(photo: Photo, folder: str | os.PathLike) -> Path:
    """The label map of ``photo`` in ``folder``, matched by relative path and file name.

    Tried in order: the photo's relative path with any image suffix, then the Cityscapes
    name (``*_leftImg8bit`` -> ``*_gtFine_labelIds.png``) at the same relative folder.

    Raises
    ------
    InputError
        No match.
    """
    folder = Path(folder)
    stem = PurePosixPath(photo.stem)
    names = [stem.with_suffix(s).as_posix() for s in (".png", *sorted(IMAGE_SUFFIXES))]
    if stem.name.endswith("_leftImg8bit"):
        city = stem.name[: -len("_leftImg8bit")] + "_gtFine_labelIds.png"
        names.append((stem.parent / city).as_posix())
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"{folder}: no semantic map for {photo.key} (looked for {names[0]}, ...).")
