import numpy as np
import pytest

from rainset.motion import measure_motion


def _scene(h=120, w=160, seed=0):
    rng = np.random.default_rng(seed)
    import cv2

    base = rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8)
    return cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)


def _rainy(frame, rng):
    out = frame.astype(np.int16)
    ys = rng.integers(0, frame.shape[0] - 10, 40)
    xs = rng.integers(0, frame.shape[1], 40)
    for y, x in zip(ys, xs):
        out[y : y + 10, x] += 120
    return np.clip(out, 0, 255).astype(np.uint8)


def test_static_rainy_scene_measures_no_motion():
    rng = np.random.default_rng(3)
    bg = _scene()
    frames = [_rainy(bg, rng) for _ in range(20)]
    rep = measure_motion(frames)
    assert rep.max_shift < 0.3
    assert rep.is_static() and rep.static
    assert rep.drift < 0.05


@pytest.mark.parametrize("dx,dy", [(3, 0), (0, -2), (4, 3)])
def test_pan_is_measured_in_pixels(dx, dy):
    big = _scene(200, 260, seed=1)
    frames = []
    for k in range(10):
        # The camera moves by (dx, dy) at frame 5: content shifts the other way.
        g = k // 5
        frames.append(np.ascontiguousarray(big[40 + g * dy : 160 + g * dy, 50 + g * dx : 210 + g * dx]))
    rep = measure_motion(frames)
    assert rep.max_shift == pytest.approx(np.hypot(dx, dy), abs=0.35)
    assert rep.worst >= 5
    assert not rep.is_static()


def test_light_drift_is_reported():
    bg = _scene()
    frames = [np.clip(bg.astype(float) * (1 - 0.03 * k), 0, 255).astype(np.uint8) for k in range(10)]
    rep = measure_motion(frames)
    # against the reference (frame 0 takes the median of frames 0-2: frame 1's light); the
    # last frame takes the median of frames 7-9: frame 8's
    assert rep.drift == pytest.approx(1 - 0.76 / 0.97, abs=0.03)
    assert rep.max_shift < 0.3
