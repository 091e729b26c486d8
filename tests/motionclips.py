"""Generated clips with a known camera motion, for the motion policy and stabilisation tests.

A frame is a static scene seen through a camera moved by a known similarity (translation in
pixels, rotation in degrees, scale) about the frame centre, plus rain streaks and sensor noise.
"""

from __future__ import annotations

import cv2
import numpy as np


def scene(h: int, w: int, *, seed: int = 0, texture: str = "textured") -> np.ndarray:
    """A static scene (H, W, 3) uint8, a margin larger than nothing: smooth enough that cubic
    resampling is exact to a fraction of a level. ``texture="low"``: a near-featureless wall (a
    faint gradient and +-2 levels of broad blotches)."""
    rng = np.random.default_rng(seed)
    if texture == "low":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = 110 + 8 * xx / w + 5 * yy / h
        blot = cv2.resize(rng.normal(0, 2, (4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        g = base + blot
        return np.clip(np.stack([g, g * 0.97, g * 0.9], axis=2), 0, 255).astype(np.uint8)
    small = rng.integers(20, 235, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    fine = cv2.resize(rng.integers(0, 60, (h // 3, w // 3, 1), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(big.astype(np.int16) + fine[..., None] - 30, 0, 255).astype(np.uint8)


def camera(tx: float = 0.0, ty: float = 0.0, rot: float = 0.0, scale: float = 1.0, *, size) -> np.ndarray:
    """2 x 3 matrix taking scene coordinates to image coordinates: the content moves by
    (tx, ty), turns by ``rot`` degrees clockwise on screen and grows by ``scale`` about the
    centre of a ``size = (w, h)`` frame."""
    w, h = size
    m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), -rot, scale)
    m[:, 2] += (tx, ty)
    return m


def shoot(bg: np.ndarray, m: np.ndarray) -> np.ndarray:
    h, w = bg.shape[:2]
    return cv2.warpAffine(bg, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def rain(frame: np.ndarray, rng: np.random.Generator, *, streaks: int = 40, noise: float = 1.5) -> np.ndarray:
    """Bright slanted streaks (8-25 px, 1-2 px wide) and Gaussian sensor noise."""
    h, w = frame.shape[:2]
    layer = np.zeros((h, w), np.float32)
    for _ in range(streaks):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        ln = int(rng.integers(8, 26))
        cv2.line(layer, (x, y), (x + ln // 5, y + ln), float(rng.uniform(60, 140)), int(rng.integers(1, 3)))
    out = frame.astype(np.float32) + layer[..., None] + rng.normal(0, noise, frame.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def clip(bg: np.ndarray, motions, *, seed: int = 0, streaks: int = 40, noise: float = 1.5) -> np.ndarray:
    """(T, H, W, 3) uint8: ``bg`` shot with each 2 x 3 matrix of ``motions``, rain on top."""
    rng = np.random.default_rng(seed)
    return np.stack([rain(shoot(bg, m), rng, streaks=streaks, noise=noise) for m in motions])


def still(n: int, size) -> list[np.ndarray]:
    return [camera(size=size) for _ in range(n)]


def pan(n: int, size, total: float = 20.0) -> list[np.ndarray]:
    """A pan of ``total`` px to the left over ``n`` frames."""
    return [camera(-total * i / (n - 1), 0.0, size=size) for i in range(n)]


def zoom(n: int, size, total: float = 0.05) -> list[np.ndarray]:
    """A zoom in by ``total`` (0.05 = 5 %) over ``n`` frames."""
    return [camera(scale=1 + total * i / (n - 1), size=size) for i in range(n)]


def jitter(n: int, size, *, amp: float = 1.0, rot: float = 0.0, seed: int = 1):
    """Random shake: translations uniform in +-amp px, rotations in +-rot degrees; returns
    (matrices, (n, 3) true (tx, ty, rot))."""
    rng = np.random.default_rng(seed)
    true = np.stack([rng.uniform(-amp, amp, n), rng.uniform(-amp, amp, n), rng.uniform(-rot, rot, n)], axis=1)
    true[0] = 0
    return [camera(tx, ty, r, size=size) for tx, ty, r in true], true
