"""From a published layout to the importer: the pairs as import plans, images kept as they are.

The ``read_*`` functions of :mod:`rainset.exchange` list a layout's pairs
(:class:`~rainset.exchange._common.LayoutPair`); :func:`import_plans` turns them into
:class:`rainset.importer.PairPlan` s, and :func:`keep_image` brings one image in without
re-encoding it (an EXIF-rotated one is written upright as PNG).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from rainset.dataset import layout
from rainset.errors import InputError
from rainset.fsutil import sha256_file
from rainset.image import write_image

if TYPE_CHECKING:
    from rainset.exchange._common import LayoutPair, Placer


def import_plans(pairs: list[LayoutPair], root: str | os.PathLike) -> list:
    """A layout's pairs as the importer's plans (:class:`rainset.importer.PairPlan`), ready for
    :func:`rainset.importer.import_paired`: the pair's id and scene, the clean file's path
    below ``root`` (without suffix) as the key that names the shared clean image, and both
    paths relative to ``root`` as the record's ``source``.

    Raises
    ------
    InputError
        Two pairs with one id (the layout's names collide).
    """
    from rainset.importer import PairPlan

    root = Path(root)
    seen: dict[str, Path] = {}
    first_of: dict[tuple, Path] = {}  # clean file contents -> the first path holding them
    plans = []
    for p in pairs:
        if p.id in seen:
            raise InputError(f"{p.rainy} and {seen[p.id]} both give the sample id {p.id!r}.")
        seen[p.id] = p.rainy
        # A clean image stored under one name per frame (BasicSR's gt/) is one image again:
        # files with equal bytes share the first one's key, so the importer writes it once.
        st = p.clean.stat()
        ident = first_of.get(("inode", st.st_dev, st.st_ino))
        if ident is None:
            digest = ("sha256", st.st_size, sha256_file(p.clean))
            ident = first_of.setdefault(digest, p.clean)
            first_of[("inode", st.st_dev, st.st_ino)] = ident
        clean = ident
        rainy_rel = Path(os.path.relpath(p.rainy, root)).as_posix()
        clean_rel = Path(os.path.relpath(p.clean, root)).as_posix()
        key = str(PurePosixPath(Path(os.path.relpath(clean, root)).as_posix()).with_suffix(""))
        plans.append(PairPlan(p.id, p.scene, key, p.rainy, clean, rainy_rel, clean_rel))
    return plans


def keep_image(placer: Placer, src: Path, root: Path, stem: str) -> tuple[str, int]:
    """Bring one source image into a dataset under ``root`` without re-encoding it: placed
    (linked or copied) at ``stem`` plus its own extension. The one exception is an image whose
    EXIF orientation is not 1: it is written upright as PNG, losslessly, so every consumer sees
    the same pixels.

    Returns
    -------
    relpath : str, the dataset path written (``stem`` + extension).
    orientation : int, the EXIF orientation that was applied (1: the file was placed as is).
    """
    from rainset.image import exif_orientation, read_image_oriented

    with open(src, "rb") as f:
        orientation = exif_orientation(f.read(1 << 20))
    if orientation != 1:
        rel = layout.image_relpath(stem, "png")
        if not (root / rel).is_file():
            write_image(root / rel, read_image_oriented(src)[0])
        return rel, orientation
    rel = stem + layout.kept_suffix(src.suffix)
    placer.place(src, root / rel)
    return rel, 1
