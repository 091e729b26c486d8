"""Tests of rainset.streaks and rainset.synth: kernel geometry, labels, sampling, rendering,
tiers and dataset writing."""

from __future__ import annotations

import hashlib
import json
import math

import cv2
import numpy as np
import pytest
from scipy.special import ndtr

from rainset import streaks
from rainset import synth as S
from rainset.dataset import check, open_dataset
from rainset.errors import InputError
from rainset.image import rain_mask, read_image, write_image
from rainset.review import Decision

ANGLES = np.arange(-45.0, 45.0 + 1e-9, 1.0)


# ----------------------------------------------------------------------------- kernel


@pytest.mark.parametrize("theta", [-45.0, -40.0, -17.5, 0.0, 3.0, 15.0, 30.0, 44.0])
@pytest.mark.parametrize("length,sigma", [(0.0, 0.5), (2.0, 0.0), (15.5, 0.3), (60.0, 2.0)])
def test_kernel_sums_to_one_and_peak_kernel_peaks_at_one(theta, length, sigma):
    k = streaks.streak_kernel(theta, length, sigma)
    assert k.min() >= 0
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
    p = streaks.peak_kernel(theta, length, sigma)
    assert p.max() == pytest.approx(1.0)
    np.testing.assert_allclose(p / p.sum(), k, atol=1e-15)


@pytest.mark.parametrize("length,sigma", [(6.0, 0.0), (20.0, 0.2), (45.0, 0.6), (80.0, 1.5)])
def test_kernel_axis_width_and_length_exact_at_every_angle(length, sigma):
    thetas, majors, minors = [], [], []
    for a in ANGLES:
        t, major, minor = streaks.kernel_moments(streaks.streak_kernel(a, length, sigma))
        thetas.append(t)
        majors.append(major)
        minors.append(minor)
    thetas, majors, minors = map(np.asarray, (thetas, majors, minors))
    assert np.abs(thetas - ANGLES).max() < 0.5
    # Cross-width: the same at every angle (within 2 %), and the predicted sd^2 + 1/12.
    assert (minors.max() - minors.min()) / minors.mean() < 0.02
    sd2 = sigma**2 + streaks.ANTIALIAS_SIGMA**2
    np.testing.assert_allclose(minors, math.sqrt(sd2 + 1 / 12), rtol=0.01)
    # Length from the moments: the segment adds L^2 / 12 along the axis.
    measured = np.sqrt(12 * (majors**2 - minors**2))
    assert np.abs(measured - length).max() < 0.5


def _reference_kernel(theta, length, sigma, shape, sub=12, steps=400):
    """Slow, obvious: average the continuous streak over sub x sub points in each pixel."""
    sd = math.hypot(sigma, streaks.ANTIALIAS_SIGMA)
    ux, uy = math.sin(math.radians(theta)), -math.cos(math.radians(theta))
    hy, hx = shape[0] // 2, shape[1] // 2
    off = (np.arange(sub) + 0.5) / sub - 0.5
    ys = (np.arange(-hy, hy + 1)[:, None] + off[None, :]).ravel()
    xs = (np.arange(-hx, hx + 1)[:, None] + off[None, :]).ravel()
    s = (np.arange(steps) + 0.5) / steps * length - length / 2
    img = np.zeros((ys.size, xs.size))
    for sj in s:  # a Gaussian at each point of the segment
        gy = np.exp(-((ys - sj * uy) ** 2) / (2 * sd * sd))
        gx = np.exp(-((xs - sj * ux) ** 2) / (2 * sd * sd))
        img += gy[:, None] * gx[None, :]
    k = img.reshape(2 * hy + 1, sub, 2 * hx + 1, sub).mean(axis=(1, 3))
    return k / k.sum()


@pytest.mark.parametrize(
    "theta,length,sigma", [(0.0, 7.0, 0.4), (27.0, 9.0, 0.8), (-41.0, 5.0, 0.0)]
)
def test_kernel_matches_slow_supersampled_reference(theta, length, sigma):
    k = streaks.streak_kernel(theta, length, sigma)
    ref = _reference_kernel(theta, length, sigma, k.shape)
    assert np.abs(k - ref).max() < 0.01 * k.max()


def test_box_gauss_is_the_pixel_integral():
    offsets = np.array([0.0, 0.3, -1.7])
    got = streaks._box_gauss(3, offsets, 0.7)
    c = np.arange(-3, 4)
    want = ndtr((c[None] + 0.5 - offsets[:, None]) / 0.7) - ndtr(
        (c[None] - 0.5 - offsets[:, None]) / 0.7
    )
    np.testing.assert_allclose(got, want, atol=1e-15)


def test_kernel_rejects_bad_arguments():
    with pytest.raises(ValueError, match="length"):
        streaks.streak_kernel(0, -1, 1)
    with pytest.raises(ValueError, match="finite"):
        streaks.streak_kernel(float("nan"), 1, 1)


@pytest.mark.parametrize("theta", [-40.0, -15.0, 15.0, 30.0])
def test_positive_theta_leans_the_top_right_on_screen(theta):
    """theta > 0: the streak's top is right of its bottom in image coordinates (y down)."""
    shape = (120, 120)
    k = streaks.sparse_peak_kernel(theta, 60.0, 0.5)
    layer = streaks.splat(shape, [(np.array([[60, 60]]), np.array([0.8]), k)])
    ys, xs = np.nonzero(layer > 0.4)
    top_x, bottom_x = xs[ys == ys.min()].mean(), xs[ys == ys.max()].mean()
    assert (top_x > bottom_x) == (theta > 0)
    measured, _, _ = streaks.kernel_moments(layer)
    assert measured == pytest.approx(theta, abs=0.5)
    # The slope matches: horizontal run over vertical rise is tan(theta).
    assert (top_x - bottom_x) / (ys.max() - ys.min()) == pytest.approx(
        math.tan(math.radians(theta)), abs=0.05
    )


@pytest.mark.parametrize(
    "theta,length,sigma", [(0.0, 10.0, 0.2), (33.0, 40.0, 1.0), (-40.0, 3.0, 2.0)]
)
def test_isolated_streak_peaks_at_its_amplitude(theta, length, sigma):
    k = streaks.sparse_peak_kernel(theta, length, sigma)
    layer = streaks.splat((101, 101), [(np.array([[50, 50]]), np.array([0.37]), k)])
    assert layer.max() == pytest.approx(0.37, abs=1e-6)


def test_splat_equals_dense_convolution_of_impulses():
    rng = np.random.default_rng(1)
    k = streaks.sparse_peak_kernel(20.0, 12.0, 0.5)
    hy, hx = k.half
    centres = np.stack([rng.integers(-hy, 40 + hy, 30), rng.integers(-hx, 50 + hx, 30)], axis=1)
    amps = rng.random(30)
    got = streaks.splat((40, 50), [(centres, amps, k)])
    dense = np.zeros((40 + 4 * hy, 50 + 4 * hx))  # streaks reach 2 halves past the edge
    for (r, c), a in zip(centres, amps):  # obvious loop over streaks and kernel entries
        for dy, dx, v in zip(k.dy, k.dx, k.values):
            dense[r + 2 * hy + dy, c + 2 * hx + dx] += a * v
    np.testing.assert_allclose(got, dense[2 * hy : 2 * hy + 40, 2 * hx : 2 * hx + 50], atol=1e-6)


# ----------------------------------------------------------------------------- direction


@pytest.mark.parametrize(
    "theta,angle,hard",
    [
        (0, 90, 9),
        (15, 75, 8),
        (-15, 105, 10),
        (30, 60, 6),
        (-30, 120, 12),
        (40, 50, 5),
        (-40, 130, 13),
    ],
)
def test_direction_labels_of_the_paper_angles(theta, angle, hard):
    assert streaks.direction_angle(theta) == pytest.approx(angle)
    got, soft = streaks.direction_class(theta)
    assert got == hard
    assert sum(w for _, w in soft) == pytest.approx(1.0)
    if theta in (15, -15):  # half-way: soft label splits evenly, hard goes towards vertical
        assert sorted(b for b, _ in soft) == ([7, 8] if theta > 0 else [10, 11])
        assert all(w == pytest.approx(0.5) for _, w in soft)
    else:
        assert soft == [(hard, 1.0)]


def test_direction_class_wraps_and_rounds():
    assert streaks.direction_class(-86.0)[0] == 0  # angle 176 -> nearest bin 0 (180)
    assert streaks.direction_class(12.0)[1] == [(7, 0.2), (8, 0.8)]


def test_direction_kernels_differentiate_along_their_direction():
    ks = streaks.direction_kernels()
    assert ks.shape == (18, 5, 5) and ks.dtype == np.float32
    yy, xx = np.mgrid[-2:3, -2:3].astype(np.float64)
    for i, k in enumerate(ks.astype(np.float64)):
        assert abs(k.sum()) < 1e-6
        np.testing.assert_allclose(k, -k[::-1, ::-1], atol=1e-6)
        a = math.radians(10 * i)
        d = (math.cos(a), -math.sin(a))  # counter-clockwise on screen, y down
        for g in ((1.0, 0.0), (0.3, -2.0)):
            ramp = g[0] * xx + g[1] * yy  # correlation at the centre pixel
            assert (k * ramp).sum() == pytest.approx(g[0] * d[0] + g[1] * d[1], abs=1e-5)
    k3 = streaks.direction_kernels(2, 3)
    np.testing.assert_allclose(k3[0], [[0, 0, 0], [-0.5, 0, 0.5], [0, 0, 0]], atol=1e-7)
    np.testing.assert_allclose(k3[1], [[0, 0.5, 0], [0, 0, 0], [0, -0.5, 0]], atol=1e-7)
    with pytest.raises(ValueError):
        streaks.direction_kernels(18, 4)


# ----------------------------------------------------------------------------- sampling


def test_sample_seed_is_sha256_of_a_stable_key():
    want = int.from_bytes(hashlib.sha256(b"7/a/b.png/2").digest()[:8], "big") >> 1
    assert S.sample_seed(7, "a/b.png", 2) == want
    assert len({S.sample_seed(0, k, v) for k in ("a", "b") for v in (0, 1)}) == 4


def test_sample_params_reproducible_and_pinnable():
    a = S.sample_params((256, 384, 3), rng=11)
    assert a == S.sample_params((256, 384, 3), rng=11)
    assert a != S.sample_params((256, 384, 3), rng=12)
    assert a.seed == 11
    assert a.angle in S.PAPER_ANGLES and a.radius in S.PAPER_RADII
    assert a.sigma == pytest.approx(a.radius * 256 / S.REFERENCE_HEIGHT, abs=1e-6)
    pinned = S.sample_params((256, 384, 3), rng=11, angle=-30, density="heavy")
    assert pinned.angle == -30 and pinned.density == "heavy"
    assert pinned.length == a.length and pinned.brightness == a.brightness
    lo, hi = S.DENSITY_COVERAGE["heavy"]
    assert lo <= pinned.coverage <= hi
    assert [layer.name for layer in a.layers] == ["near", "far"]
    far = a.layers[1]
    assert far.length < a.length and far.brightness < a.brightness and far.sigma <= a.sigma


def test_params_round_trip_through_json():
    p = S.sample_params((100, 100, 3), rng=3)
    back = S.RainParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p
    with pytest.raises(ValueError):
        S.RainParams.from_dict({"angle": 0})


def test_config_validates():
    with pytest.raises(ValueError, match="densities"):
        S.SynthConfig(densities=("drizzle",))
    with pytest.raises(ValueError, match="angles"):
        S.SynthConfig(angles=(100,))


def test_parse_angles():
    assert S.parse_angles("0,15,30,40") == (0, -15, 15, -30, 30, -40, 40)
    assert S.parse_angles("+15, -30") == (15, -30)
    for bad in ("", "x", "95"):
        with pytest.raises(ValueError):
            S.parse_angles(bad)


# ----------------------------------------------------------------------------- rendering


def _photo(h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8), (w, h))
    img[: h // 4] = 250  # a bright band where add clips
    return img


@pytest.mark.parametrize("blend", ["add", "screen"])
def test_render_invariants(blend):
    clean = _photo()
    cfg = S.SynthConfig(blend=blend)
    p = S.sample_params(clean.shape, config=cfg, rng=5, density="heavy")
    out = S.render(clean, p)
    again = S.render(clean.copy(), S.RainParams.from_dict(p.to_dict()))
    for name in ("rainy", "rain", "residual", "mask"):
        np.testing.assert_array_equal(getattr(out, name), getattr(again, name))
    assert out.rainy.dtype == np.uint8 and out.rain.dtype == np.float32
    np.testing.assert_array_equal(clean.astype(np.int16) + out.residual, out.rainy)
    assert (out.rainy >= clean).all()
    np.testing.assert_array_equal(out.mask, rain_mask(out.rainy, clean))
    np.testing.assert_array_equal(out.mask, out.residual.max(axis=2) >= 13)
    assert out.coverage == pytest.approx(out.mask.mean())
    # The background is untouched where there is no rain.
    dry = out.rain == 0
    assert dry.any()
    np.testing.assert_array_equal(out.rainy[dry], clean[dry])
    if blend == "add":
        want = np.minimum(clean + np.rint(out.rain * 255)[..., None], 255)
        np.testing.assert_array_equal(out.rainy, want)


def test_rain_layer_reference_loop_and_border_entry():
    p = S.sample_params((60, 80, 3), rng=9, density="medium")
    got = S.rain_layer((60, 80), p)
    want = np.zeros((60, 80))
    for layer in p.layers:  # an obvious re-implementation, one streak at a time
        k = streaks.peak_kernel(p.angle, layer.length, layer.sigma)
        hy, hx = k.shape[0] // 2, k.shape[1] // 2
        n = round(layer.per_mpx * (60 + 2 * hy) * (80 + 2 * hx) / 1e6)
        u = np.random.default_rng(layer.seed).random((n, 3))
        for a, b, c in u:
            r, col = int(a * (60 + 2 * hy)) - hy, int(b * (80 + 2 * hx)) - hx
            amp = layer.brightness * (1 - layer.jitter * c)
            kk = np.where(k >= streaks.SPLAT_FLOOR, k, 0) * amp
            for dy in range(-hy, hy + 1):
                for dx in range(-hx, hx + 1):
                    if 0 <= r + dy < 60 and 0 <= col + dx < 80:
                        want[r + dy, col + dx] += kk[dy + hy, dx + hx]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert got[0].max() > 0 and got[-1].max() > 0  # streaks enter from the borders


def test_measured_coverage_tracks_target():
    clean = np.full((192, 256, 3), 90, np.uint8)
    ratios = []
    for seed in range(6):
        p = S.sample_params(clean.shape, rng=seed)
        ratios.append(S.render(clean, p).coverage / p.coverage)
    assert 0.8 < np.median(ratios) < 1.2


def test_labels():
    p = S.sample_params((64, 64, 3), rng=1, angle=15)
    lab = S.labels(p, coverage=0.1234567)
    assert lab["theta"] == 15 and lab["direction_angle"] == 75 and lab["direction_class"] == 8
    assert lab["direction_soft"] == [[7, 0.5], [8, 0.5]]
    assert lab["coverage"] == 0.123457 and lab["seed"] == 1
    json.dumps(lab)


def test_render_rain_frames_independent_layers_over_static_background():
    bg = _photo(48, 64)
    frames = list(S.render_rain_frames(bg, 3, angle=30, density="medium", rng=0))
    assert len(frames) == 3
    for f in frames:
        assert f.shape == bg.shape and f.dtype == np.uint8 and (f >= bg).all()
    assert not np.array_equal(frames[0], frames[1])
    again = list(S.render_rain_frames(bg, 3, angle=30, density="medium", rng=0))
    np.testing.assert_array_equal(frames[2], again[2])


def test_preview_sheet_grid():
    sheet = S.preview_sheet(_photo(), angles=(0, 15, -15), radii=(0.2, 1.0), cell=60, zoom=2)
    assert sheet.shape == (3 * (60 + 26), 2 * (60 + 4), 3)


# ----------------------------------------------------------------------------- tiers


def test_tier_sigmas_and_filters_match_reference():
    assert [S.tier_sigma(k) for k in S.TIER_SIZES] == [0.8, 1.1, 1.4, 1.7]
    from scipy.ndimage import convolve1d

    clean = _photo(40, 50)
    tiers = S.lowpass_tiers(clean)
    for k, t in tiers.items():
        x = np.arange(k) - k // 2
        g = np.exp(-(x**2) / (2 * S.tier_sigma(k) ** 2))
        g /= g.sum()
        ref = clean.astype(np.float64)
        for axis in (0, 1):  # reflect-101 is scipy's "mirror"
            ref = convolve1d(ref, g, axis=axis, mode="mirror")
        assert np.abs(t.astype(int) - np.rint(ref)).max() <= 1


def test_tier_rule_picks_by_detail():
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    k, kept = S.choose_tier(noise, S.lowpass_tiers(noise))
    assert k == 3 and kept[0] <= S.TIER_DETAIL_KEPT
    smooth = cv2.GaussianBlur(noise, (0, 0), 1)  # detail at a coarser scale
    k2, kept2 = S.choose_tier(smooth, S.lowpass_tiers(smooth))
    assert k2 > 3 and all(a >= b for a, b in zip(kept2, kept2[1:]))


# ----------------------------------------------------------------------------- datasets


def _photos(tmp_path, n=3, size=(40, 56)):
    folder = tmp_path / "photos"
    for i in range(n):
        write_image(folder / ("sub" if i % 2 else "") / f"p{i}.png", _photo(*size, seed=i))
    return folder


def _files(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "rainset.json"
    }


def test_synthesize_dataset_passes_check_and_reproduces(tmp_path):
    photos = S.find_photos(_photos(tmp_path))
    opts = S.SynthOptions(per_image=2, seed=4)
    events = list(S.synthesize(photos, tmp_path / "a", options=opts))
    assert [e.id for e in events] == ["p0_v0", "p0_v1", "p2_v0", "p2_v1", "sub/p1_v0", "sub/p1_v1"]
    assert check(tmp_path / "a") == []
    ds = open_dataset(tmp_path / "a")
    recs = list(ds.samples())
    assert {r["scene"] for r in recs} == {"p0.png", "sub/p1.png", "p2.png"}
    for rec in recs:
        rainy, clean = ds.load(rec, "rainy"), ds.load(rec, "clean")
        residual, mask = ds.load(rec, "residual"), ds.load_mask(rec)
        np.testing.assert_array_equal(clean.astype(np.int16) + residual, rainy)
        np.testing.assert_array_equal(mask, residual.max(axis=2) >= rec["mask_threshold"])
        # Re-rendering from the manifest's parameters gives the stored rainy image.
        again = S.render(clean, S.RainParams.from_dict(rec["params"]))
        np.testing.assert_array_equal(again.rainy, rainy)
        rain16 = read_image(ds.path(rec["rain_map"]))[..., 0]
        np.testing.assert_allclose(rain16 * rec["rain_map_scale"], again.rain, atol=6e-5)
        assert set(rec["tiers"]) == {"3x3", "5x5", "7x7", "9x9"} and rec["tier"] in rec["tiers"]
        assert rec["labels"]["seed"] == S.sample_seed(4, rec["scene"], rec["variant"])
    # Same seed, same bytes (and worker count does not matter); another seed differs.
    list(S.synthesize(photos, tmp_path / "b", options=opts, workers=2))
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    list(S.synthesize(photos, tmp_path / "c", options=S.SynthOptions(per_image=2, seed=5)))
    fa, fc = _files(tmp_path / "a"), _files(tmp_path / "c")
    assert fa["rainy/p0_v0.png"] != fc["rainy/p0_v0.png"]
    assert fa["clean/p0.png"] == fc["clean/p0.png"]


def test_adding_a_photo_changes_no_other_sample(tmp_path):
    folder = _photos(tmp_path, n=2)
    list(S.synthesize(S.find_photos(folder), tmp_path / "a"))
    write_image(folder / "a_first.png", _photo(40, 56, seed=9))  # sorts before the others
    list(S.synthesize(S.find_photos(folder), tmp_path / "b"))
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    for name, data in fa.items():
        if name != "manifest.jsonl":
            assert fb[name] == data, name
    old = {r["id"]: r for r in open_dataset(tmp_path / "a").samples()}
    new = {r["id"]: r for r in open_dataset(tmp_path / "b").samples()}
    for sid, rec in old.items():
        assert new[sid]["params"] == rec["params"]


def test_interrupted_run_resumes_to_the_same_bytes(tmp_path):
    photos = S.find_photos(_photos(tmp_path))
    opts = S.SynthOptions(per_image=2)
    list(S.synthesize(photos, tmp_path / "full", options=opts))
    gen = S.synthesize(photos, tmp_path / "cut", options=opts)
    for _ in range(3):
        next(gen)
    gen.close()  # interrupted: the writer does not finish
    assert any("unfinished" in p.message for p in check(tmp_path / "cut"))
    events = list(S.synthesize(photos, tmp_path / "cut", options=opts))
    assert [e.skipped for e in events] == [True] * 3 + [False] * 3  # in photo order
    assert check(tmp_path / "cut") == []
    assert _files(tmp_path / "full") == _files(tmp_path / "cut")


def test_lazy_tiers_all_choice_max_size_and_jpeg(tmp_path):
    photos = S.find_photos(_photos(tmp_path, n=1, size=(80, 120)))
    opts = S.SynthOptions(tiers="lazy", tier_choice="all", max_size=60)
    (ev,) = list(S.synthesize(photos, tmp_path / "o", options=opts, image_format="jpg"))
    rec = ev.record
    assert "tiers" not in rec and "tier" not in rec
    assert rec["rainy"].endswith(".jpg") and rec["residual"].endswith(".png")
    assert read_image(tmp_path / "o" / rec["rainy"]).shape == (40, 60, 3)
    assert check(tmp_path / "o") == []
    meta = open_dataset(tmp_path / "o").meta["params"]
    assert meta["tier_sigmas"] == {"3x3": 0.8, "5x5": 1.1, "7x7": 1.4, "9x9": 1.7}


def test_semantic_maps_are_copied(tmp_path):
    photos = S.find_photos(_photos(tmp_path, n=2))
    sem = tmp_path / "sem"
    labels0 = np.random.default_rng(0).integers(0, 19, (40, 56), dtype=np.uint8)
    write_image(sem / "p0.png", labels0)
    write_image(sem / "sub" / "p1.png", labels0[::-1].copy())
    events = list(S.synthesize(photos, tmp_path / "o", semantic_dir=sem))
    ds = open_dataset(tmp_path / "o")
    got = ds.load(events[0].record, "semantic")[..., 0]
    np.testing.assert_array_equal(got, labels0)
    assert check(tmp_path / "o") == []
    with pytest.raises(InputError, match="no semantic map"):
        S.find_semantic(S.Photo("p9.png", tmp_path / "p9.png"), sem)


def test_cityscapes_semantic_name(tmp_path):
    sem = tmp_path / "gtFine"
    write_image(
        sem / "train" / "aachen" / "a_000001_gtFine_labelIds.png", np.zeros((4, 4), np.uint8)
    )
    photo = S.Photo("train/aachen/a_000001_leftImg8bit.png", tmp_path / "x.png")
    assert S.find_semantic(photo, sem).name == "a_000001_gtFine_labelIds.png"


def test_tier_review_uses_the_review_log(tmp_path):
    photos = S.find_photos(_photos(tmp_path, n=2))
    script = iter(["more", "accept", "reject"])
    asked = []

    def reviewer(c):
        asked.append((c.scene, c.n_frames))
        return Decision(next(script))

    got = dict(S.review_tiers(photos, tmp_path / "o", reviewer))
    assert got == {"p0.png": 5, "sub/p1.png": None}
    assert asked == [("p0.png", 3), ("p0.png", 5), ("sub/p1.png", 3)]
    assert (tmp_path / "o" / "review" / "p0_5x5.png").is_file()

    def never(c):
        raise AssertionError("asked again")

    assert dict(S.review_tiers(photos, tmp_path / "o", never)) == got  # answers come from the file
    opts = S.SynthOptions(tier_choice="review")
    events = list(S.synthesize(photos, tmp_path / "o", options=opts, tier_decisions=got))
    assert [e.record["tier"] for e in events] == ["5x5"]
    assert check(tmp_path / "o") == []


def test_photo_discovery(tmp_path):
    write_image(tmp_path / "a.png", _photo(16, 16))
    write_image(tmp_path / "a.jpg", _photo(16, 16))
    with pytest.raises(InputError, match="differ only in suffix"):
        S.find_photos(tmp_path)
    with pytest.raises(InputError, match="no images"):
        S.find_photos(tmp_path / "sub" if (tmp_path / "sub").mkdir() is None else None)
    bundled = S.bundled_photos()
    assert {p.key for p in bundled} <= {f"skimage/{n}" for n in S.BUNDLED_PHOTOS}
    assert all(p.note and p.path.is_file() for p in bundled)
