import numpy as np
import pytest


def textured_background(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth, textured static scene (H, W, 3) uint8."""
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.integers(30, 200, (max(2, h // 6), max(2, w // 6), 3), dtype=np.uint8)
    return cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)


def rain_frames(bg: np.ndarray, n: int, *, seed: int = 0, streaks: int = 6, noise: float = 1.0):
    """Static background + a few bright vertical streaks per frame + sensor noise."""
    rng = np.random.default_rng(seed)
    h, w = bg.shape[:2]
    for _ in range(n):
        f = bg.astype(np.float32) + rng.normal(0, noise, bg.shape)
        for _ in range(streaks):
            y, x = rng.integers(0, h - 6), rng.integers(0, w)
            f[y : y + 6, x] += 90
        yield np.clip(np.rint(f), 0, 255).astype(np.uint8)


@pytest.fixture
def static_clip(tmp_path):
    """Factory: a static rainy H.264 clip with a known background."""
    from rainset.video import write_video

    def make(n=40, h=48, w=64, seed=0, name="clip.mp4"):
        bg = textured_background(h, w, seed)
        path = tmp_path / name
        write_video(path, rain_frames(bg, n, seed=seed), fps=10, crf=10)
        return path, bg

    return make
