"""The bundled example: a static rainy clip made offline from a photo that scikit-image ships.

scikit-image's wheel carries a few CC0 photographs (its ``data`` folder's README states their
licences); rainset's own rain renderer turns one of them into a rainy H.264 clip whose clean
image is known exactly, so ``rainset demo`` can score build-gt end to end without any download.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from rainset.errors import InputError

#: Photos in scikit-image's package data that are colour photographs (all CC0 per its README).
EXAMPLE_PHOTOS = ("coffee", "astronaut", "chelsea", "rocket", "motorcycle_left")


def example_photo(name: str = "coffee", *, max_side: int = 640) -> np.ndarray:
    """A colour photo from scikit-image's bundled data, resized to even dimensions.

    Returns
    -------
    photo : (H, W, 3) uint8 ndarray, H and W even (H.264 4:2:0 needs them even)
    """
    import skimage.data

    if name not in EXAMPLE_PHOTOS:
        raise ValueError(f"photo must be one of {', '.join(EXAMPLE_PHOTOS)}, got {name!r}")
    img = skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skimage.data, name)()
    img = np.ascontiguousarray(img[..., :3]).astype(np.uint8)
    h, w = img.shape[:2]
    s = min(1.0, max_side / max(h, w))
    nh, nw = int(h * s) // 2 * 2, int(w * s) // 2 * 2
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA) if (nh, nw) != (h, w) else img


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
) -> tuple[Path, np.ndarray]:
    """Write the example clip (H.264 mp4, crf 18) and return its path and the clean photo."""
    from rainset.video import write_video

    path = Path(path)
    clean = example_photo(photo)
    try:
        write_video(path, rainy_frames(clean, n_frames, rng=seed), fps=fps, crf=18)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the example clip ({exc}).") from None
    return path, clean
