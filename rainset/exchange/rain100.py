"""Rain100L / Rain100H / Rain200 layouts: ``rain-N`` against ``norain-N``, and JORDER's
``rain/X2/norain-NxK`` rainy frames against ``norain/norain-N``.

The number ``N`` pairs a rainy file with its clean one, compared as an integer (``rain-001``
and ``norain-1`` pair up). In JORDER's form the rainy name ends in ``xK`` (``norain-12x2``):
``N`` is the number before the ``x``, never the last number of the name. Every clean image is a
scene of its own (the sets hold unrelated photographs).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rainset.errors import InputError
from rainset.exchange._common import Layout, LayoutPair
from rainset.image import is_image_path
from rainset.inputs import natural_key as _natural  # the one natural order

__all__ = ["read_rain100"]

_CLEAN = re.compile(r"^norain-(\d+)$", re.I)
_RAINY = re.compile(r"^rain-(\d+)$", re.I)
_JORDER = re.compile(r"^norain-(\d+)x(\d+)$", re.I)


def read_rain100(root: str | os.PathLike) -> Layout:
    """The pairs of a Rain100-style folder (searched recursively); ``unmatched`` lists the
    image files that matched none (relative paths, natural order).

    Ids are the rainy files' paths relative to ``root`` without suffix; the scene is the clean
    image's stem (``norain-1``).

    Raises
    ------
    InputError
        Not a folder, two clean files with one number, or no pair at all.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder.")
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and is_image_path(p)
         and not any(s.startswith(".") for s in p.relative_to(root).parts)),
        key=lambda p: _natural(p.relative_to(root).as_posix()),
    )
    clean: dict[int, Path] = {}
    rainy: list[tuple[int, Path]] = []
    unmatched: list[str] = []
    for p in files:
        stem = p.stem
        if m := _JORDER.match(stem):
            rainy.append((int(m.group(1)), p))
        elif m := _CLEAN.match(stem):
            n = int(m.group(1))
            if n in clean:
                raise InputError(f"{p} and {clean[n]} are both clean image {n}; keep one.")
            clean[n] = p
        elif m := _RAINY.match(stem):
            rainy.append((int(m.group(1)), p))
        else:
            unmatched.append(p.relative_to(root).as_posix())
    pairs = []
    for n, p in rainy:
        if n not in clean:
            unmatched.append(p.relative_to(root).as_posix())
            continue
        sid = p.relative_to(root).with_suffix("").as_posix()
        pairs.append(LayoutPair(sid, clean[n].stem, p, clean[n]))
    used = {p.clean for p in pairs}
    unmatched += [c.relative_to(root).as_posix() for c in clean.values() if c not in used]
    if not pairs:
        raise InputError(
            f"{root}: no rain-N / norain-N (or rain/X2/norain-NxK) pair in this folder."
        )
    return Layout(pairs, sorted(unmatched, key=_natural))
