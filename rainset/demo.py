"""The bundled example: a static rainy clip made offline from a photo that scikit-image ships.

scikit-image's wheel carries a few CC0 photographs (its ``data`` folder's README states their
licences); rainset's own rain renderer turns one of them into a rainy H.264 clip whose clean
image is known exactly, so ``rainset demo`` can score build-gt end to end without any download.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rainset.errors import InputError


def _bundled(name: str):
    from rainset.synth import bundled_photos

    photos = {p.stem.rsplit("/", 1)[-1]: p for p in bundled_photos()}
    if name not in photos:
        raise ValueError(f"photo must be one of {', '.join(sorted(photos))}, got {name!r}")
    return photos[name]


def example_photo(name: str = "coffee", *, max_side: int = 640) -> np.ndarray:
    """A colour photo from scikit-image's bundled data (the photos ``rainset synth`` uses by
    default), shrunk so its longer side is at most ``max_side`` and cropped to even dimensions.

    Returns
    -------
    photo : (H, W, 3) uint8 ndarray, H and W even (H.264 4:2:0 needs them even)
    """
    from rainset.synth import load_photo

    img = load_photo(_bundled(name).path, max_size=max_side)
    h, w = img.shape[:2]
    return np.ascontiguousarray(img[: h // 2 * 2, : w // 2 * 2])


def rainy_frames(
    background: np.ndarray, n_frames: int, *, noise_sigma: float = 2.0, rng=0, angle: float = 10.0,
    radius: float = 0.6, density: str = "medium",
):
    """Yield ``n_frames`` rainy frames over a static background: a fresh rain layer each frame
    plus Gaussian sensor noise of ``noise_sigma`` levels."""
    from rainset.synth import render_rain_frames

    gen = np.random.default_rng(rng)
    for frame in render_rain_frames(background, n_frames, angle=angle, radius=radius, density=density, rng=gen):
        if noise_sigma > 0:
            noisy = frame.astype(np.float32) + gen.normal(0, noise_sigma, frame.shape).astype(np.float32)
            frame = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        yield frame


def make_example_clip(
    path: str | os.PathLike, *, n_frames: int = 60, photo: str = "coffee", fps: float = 25, seed: int = 0
) -> tuple[Path, np.ndarray, str]:
    """Write the example clip (H.264 mp4, crf 18); return its path, the clean photo and the
    photo's licence note."""
    from rainset.video import write_video

    path = Path(path)
    clean = example_photo(photo)
    try:
        write_video(path, rainy_frames(clean, n_frames, rng=seed), fps=fps, crf=18)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the example clip ({exc}).") from None
    return path, clean, _bundled(photo).note
