import numpy as np
import pytest

from rainset.errors import InputError
from rainset.fsutil import atomic_path, atomic_write_text
from rainset.image import rain_mask, read_image, rgb_to_luma, to_float, to_uint8, write_image


@pytest.mark.parametrize("suffix,dtype", [(".png", np.uint8), (".png", np.uint16)])
def test_png_round_trip_exact(tmp_path, suffix, dtype):
    rng = np.random.default_rng(0)
    img = rng.integers(0, np.iinfo(dtype).max, (7, 9, 3), endpoint=True).astype(dtype)
    write_image(tmp_path / f"a{suffix}", img)
    back = read_image(tmp_path / f"a{suffix}")
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, img)


def test_jpeg_is_rgb_not_bgr(tmp_path):
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = 250  # pure red
    write_image(tmp_path / "r.jpg", img, quality=95)
    back = read_image(tmp_path / "r.jpg")
    assert back[..., 0].mean() > 200 and back[..., 2].mean() < 50


def test_grey_png_reads_as_three_channels(tmp_path):
    import cv2

    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    back = read_image(tmp_path / "g.png")
    assert back.shape == (3, 4, 3)
    np.testing.assert_array_equal(back[..., 1], grey)


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(InputError, match="bad.png"):
        read_image(bad)
    with pytest.raises(InputError, match="missing.png"):
        read_image(tmp_path / "missing.png")


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "keep.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_16_bit_jpeg_refused(tmp_path):
    with pytest.raises(ValueError, match="PNG"):
        write_image(tmp_path / "x.jpg", np.zeros((2, 2, 3), np.uint16))


def test_luma_matches_exact_formula_floor():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (50, 3), dtype=np.uint8)
    want = [int(np.floor((299 * int(r) + 587 * int(g) + 114 * int(b)) / 1000)) for r, g, b in rgb]
    assert rgb_to_luma(rgb).tolist() == want
    assert rgb_to_luma(np.array([255, 255, 255], np.uint8)) == 255


def test_float_round_trip():
    x = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(to_uint8(to_float(x)), x)


def test_rain_mask_threshold_against_loop():
    rng = np.random.default_rng(2)
    clean = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    rainy = np.clip(clean.astype(int) + rng.integers(-20, 30, clean.shape), 0, 255).astype(np.uint8)
    m = rain_mask(rainy, clean, threshold=13)
    for y in range(6):
        for x in range(7):
            want = max(int(rainy[y, x, c]) - int(clean[y, x, c]) for c in range(3)) >= 13
            assert m[y, x] == want
    # Darker pixels are never rain; "any" marks every difference.
    anym = rain_mask(rainy, clean, mode="any")
    np.testing.assert_array_equal(anym, (rainy != clean).any(axis=2))
    assert anym.sum() > m.sum()


def test_rain_mask_rejects_bad_threshold():
    a = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="threshold"):
        rain_mask(a, a, threshold=0)


def test_to_uint8_is_the_one_16_to_8_bit_conversion(tmp_path):
    """uint16 -> nearest 8-bit level (x / 257): 257 v -> v, ends kept; the photo loader and
    the frame-folder reader give the same levels."""
    x = np.arange(65536, dtype=np.uint16)
    np.testing.assert_array_equal(to_uint8(x), np.rint(x / 257.0).astype(np.uint8))
    v = np.arange(256, dtype=np.uint16)
    np.testing.assert_array_equal(to_uint8(v * 257), v)
    img = np.random.default_rng(0).integers(0, 65536, (8, 10, 3), dtype=np.uint16)
    write_image(tmp_path / "a.png", img)
    write_image(tmp_path / "b.png", img)
    from rainset.synth import load_photo
    from rainset.video import iter_frames

    frames = list(iter_frames(tmp_path))
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[0], to_uint8(img))
    np.testing.assert_array_equal(load_photo(tmp_path / "a.png"), to_uint8(img))
