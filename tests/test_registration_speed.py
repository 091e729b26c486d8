"""The speed internals of the registration estimator and of the pairs pass (issue 14) give the
plain computations' numbers: transforms into reused arrays, the reference's texture counted
only when asked for, a cheaper small median, the pass's decoding threads."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import scipy.fft
from conftest import textured_background
from test_timelapse import structured_frames, structured_video  # noqa: F401 - a fixture

import rainset._analysis_frames as af
import rainset.registration as reg_mod
from rainset.motion import MotionPolicy
from rainset.registration import (
    PEAK_SIGMA,
    Registrar,
    _apply,
    _grid_tiles,
    _irfft2,
    _median,
    _peak_weight,
    _rfft2,
    _similarity_lsq,
    fit_tiles,
    phase_shifts,
    textured_tiles,
    tile_centres,
)


def _old_phase_shifts(ref_fft, img_fft, shape, sigma=PEAK_SIGMA):
    """phase_shifts as it was (git 052c3cd): fresh arrays, scipy.fft."""
    weight, total = _peak_weight(shape[0], shape[1], float(sigma))
    cross = img_fft * np.conj(ref_fft)
    mag = np.abs(cross)
    mag += 1e-12
    cross *= np.divide(weight, mag, out=mag)
    r = scipy.fft.irfft2(cross, s=shape, axes=(1, 2), overwrite_x=True)
    k, h, w = r.shape
    peak = r.reshape(k, -1).argmax(axis=1)
    py, px = np.divmod(peak, w)
    ys = np.stack([py, (py - 1) % h, (py + 1) % h, py, py], axis=1)
    xs = np.stack([px, px, px, (px - 1) % w, (px + 1) % w], axis=1)
    v = r[np.arange(k)[:, None], ys, xs]
    c = v[:, 0]
    lg = np.log(np.maximum(v, 1e-12))
    lc, ll, lh = lg[:, :1], lg[:, 1::2], lg[:, 2::2]
    den = ll - 2 * lc + lh
    off = np.where(den < 0, 0.5 * (ll - lh) / np.where(den < 0, den, -1.0), 0.0).clip(-1, 1)
    f = np.stack([px, py], axis=1) + off[:, ::-1]
    f = np.where(f > np.array([w / 2, h / 2]), f - np.array([w, h]), f)
    return np.column_stack([f, c / total])


def _old_transform(img):
    """Registrar.transform as it was: a new tile array, scipy.fft.rfft2."""
    tiles = _grid_tiles(img)
    th, tw = tiles.shape[1:]
    tiles *= np.outer(np.hanning(th), np.hanning(tw)).astype(np.float32)
    return scipy.fft.rfft2(tiles, axes=(1, 2)), (th, tw)


def _images(shape, n, seed):
    """A textured scene seen through small shifts, with noise: analysis-like uint8 images."""
    rng = np.random.default_rng(seed)
    h, w = shape
    bg = textured_background(h + 16, w + 16, seed)[:, :, 1].astype(np.float32)
    out = []
    for _ in range(n):
        y, x = rng.integers(0, 16, 2)
        img = bg[y : y + h, x : x + w] + rng.normal(0, 4, (h, w))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(params=[False, True], ids=["pocketfft", "scipy.fft"])
def fallback(request, monkeypatch):
    """Both paths: scipy's pocketfft binding, and the public functions where it is missing."""
    if request.param:
        monkeypatch.setattr(reg_mod, "_pocketfft", lambda: None)
    return request.param


# 120 x 180: whole cells (40 x 60); 100 x 130: cells of 33 x 43 cut to 32 x 40 (a view);
# 240 x 360 (720 x 480 frames): spectra over numpy's 256 kB, products computed in place.
SHAPES = [(120, 180), (100, 130), (240, 360)]


@pytest.mark.parametrize("shape", SHAPES)
def test_transforms_are_scipy_fft_bit_for_bit(shape, fallback):
    img = _images(shape, 1, 0)[0]
    tiles = _grid_tiles(img)
    spec = _rfft2(tiles, np.empty((9, tiles.shape[1], tiles.shape[2] // 2 + 1), np.complex64))
    assert np.array_equal(spec, scipy.fft.rfft2(tiles, axes=(1, 2)))
    corr = _irfft2(spec, tiles.shape[1:], np.empty(tiles.shape, np.float32))
    assert corr.dtype == np.float32
    assert np.array_equal(corr, scipy.fft.irfft2(spec, s=tiles.shape[1:], axes=(1, 2)))


@pytest.mark.parametrize("shape", SHAPES)
def test_registrar_gives_the_plain_computation_bit_for_bit(shape, fallback):
    """Reused arrays, in the order the scorer uses them (a new reference now and then, from
    the spectrum just computed): the shifts and measurements of fresh arrays and scipy.fft."""
    imgs = _images(shape, 12, 1)
    policy = MotionPolicy()
    reg = Registrar(policy, 2, shape)
    reg.set_reference(imgs[0])
    ref_fft, tile = _old_transform(imgs[0])
    for i, img in enumerate(imgs[1:], 1):
        fft = reg.transform(img)
        old_fft, _ = _old_transform(img)
        assert np.array_equal(fft, old_fft)
        old_shifts = _old_phase_shifts(ref_fft, old_fft, tile)
        assert np.array_equal(reg.tile_shifts(img, fft), old_shifts)
        assert np.array_equal(phase_shifts(ref_fft, old_fft, tile), old_shifts)  # fresh arrays
        m = reg.measure(img, i, fft)
        fresh = Registrar(policy, 2, shape)
        fresh.set_reference(imgs[0] if i < 5 else imgs[4])
        assert m == fresh.measure(img, i)
        if i == 4:  # a new run: this frame, from the spectrum in hand, becomes the reference
            reg.set_reference(img, fft)
            ref_fft = old_fft


def _design(p):
    """The fit's real linear system as it was solved (git 052c3cd, with np.linalg.lstsq):
    rows of d = t + [[a, -b], [b, a]] p for points p (K, 2)."""
    m = np.zeros((2 * len(p), 4))
    m[0::2, 0] = m[1::2, 1] = 1
    m[0::2, 2], m[0::2, 3] = p[:, 0], -p[:, 1]
    m[1::2, 2], m[1::2, 3] = p[:, 1], p[:, 0]
    return m


def test_scoring_loads_the_fft_binding_without_importing_scipy_fft():
    """The registrar's transforms load scipy's pocketfft binding from its file: scoring a
    frame imports no scipy.fft package (0.13-0.24 s of CPU), and a later import of scipy.fft
    gets the same module."""
    code = (
        "import sys, numpy as np\n"
        "from rainset.motion import MotionPolicy\n"
        "from rainset.registration import Registrar, _pocketfft\n"
        "img = (np.arange(240 * 360) % 251).astype(np.uint8).reshape(240, 360)\n"
        "reg = Registrar(MotionPolicy(), 2, img.shape)\n"
        "reg.set_reference(img)\n"
        "reg.measure(np.roll(img, 3, axis=1))\n"
        "assert _pocketfft() is not None\n"
        "assert 'scipy.fft' not in sys.modules, 'scipy.fft was imported'\n"
        "from scipy.fft._pocketfft import pypocketfft\n"
        "assert pypocketfft is _pocketfft()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_similarity_fit_is_the_least_squares_solution():
    """The closed form gives np.linalg.lstsq's answer on every subset of tiles."""
    rng = np.random.default_rng(5)
    centres = tile_centres((240, 360))
    for _ in range(300):
        sel = rng.choice(9, int(rng.integers(2, 10)), replace=False)
        p, d = centres[sel], rng.normal(0, 3, (len(sel), 2))
        want = np.linalg.lstsq(_design(p), d.reshape(-1), rcond=None)[0]
        got = _similarity_lsq(p[:, 0] + 1j * p[:, 1], d[:, 0] + 1j * d[:, 1])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_fit_tiles_recovers_a_similarity_past_two_outlying_tiles():
    centres = tile_centres((240, 360))
    true = np.array([1.5, -0.75, 0.002, -0.004])  # (tx, ty, a, b)
    d = _apply(true, centres)
    d[[2, 6]] += [[5.0, -3.0], [-4.0, 6.0]]  # two tiles on a passing car
    params, inl = fit_tiles(centres, d, np.ones(9, bool), min_tiles=3)
    assert inl.tolist() == [i not in (2, 6) for i in range(9)]
    np.testing.assert_allclose(params, true, rtol=0, atol=1e-9)


def test_the_reference_survives_the_next_transform():
    """transform() reuses its array; set_reference keeps its own copy of the spectrum."""
    a, b = _images((120, 180), 2, 2)
    reg = Registrar(MotionPolicy(), 2, a.shape)
    reg.set_reference(a, reg.transform(a))
    reg.transform(b)  # overwrites the spectrum set_reference was given
    m = reg.measure(a)
    assert m.displacement < 1e-3  # against b's spectrum: the shift between them, pixels
    assert m.response == pytest.approx(1.0, abs=1e-3)


def test_registrar_allocates_no_large_array_per_frame():
    """The page faults of fresh few-hundred-kB temporaries were ~0.4 ms of a 720 x 480 frame's
    scoring; the registrar's large arrays are made once (before: ~1.5 MB a frame)."""
    if reg_mod._pocketfft() is None:
        pytest.skip("this scipy has no pocketfft binding that writes into given arrays")
    imgs = _images((240, 360), 4, 3)  # the analysis image of a 720 x 480 frame
    reg = Registrar(MotionPolicy(), 2, imgs[0].shape)
    reg.set_reference(imgs[0])
    reg.measure(imgs[1], 1)  # makes the arrays
    tracemalloc.start()
    try:
        for i, img in enumerate(imgs[2:], 2):
            reg.measure(img, i)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 120_000, peak  # a tile array alone is 346 kB


def test_reference_texture_is_counted_only_when_a_fit_fails(monkeypatch):
    calls = []

    def counted(img, min_texture):
        calls.append(1)
        return textured_tiles(img, min_texture)

    monkeypatch.setattr(reg_mod, "textured_tiles", counted)
    a, b = _images((120, 180), 2, 4)
    policy = MotionPolicy()
    reg = Registrar(policy, 2, a.shape)
    reg.set_reference(a)
    m = reg.measure(b)
    assert m.measured and not calls  # a good fit never needs it
    other = np.random.default_rng(5).integers(0, 256, a.shape, dtype=np.uint8)
    m = reg.measure(other)  # unrelated: no fit, was it the picture that changed?
    assert len(calls) == 1 and math.isinf(m.displacement)
    assert reg.ref_textured == int(textured_tiles(a, policy.min_texture).sum())
    assert len(calls) == 1  # counted once per reference


@pytest.mark.parametrize("n", range(1, 10))
def test_small_median_is_numpys(n):
    rng = np.random.default_rng(n)
    for _ in range(200):
        v = rng.random(n).astype(np.float32).astype(np.float64)  # responses: float32 values
        if rng.random() < 0.3:
            v[: n // 2] = v[-1]  # ties
        got = _median(v)
        assert type(got) is float and got == float(np.median(v))


@pytest.mark.parametrize("cores, threads", [(1, 1), (2, 1), (16, 15)])
def test_pass_decoder_leaves_a_core_to_the_scoring_of_small_frames(monkeypatch, cores, threads):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert af._decoder_threads(8, 720, 480) == threads
    assert af._decoder_threads(8, 576, 720) == threads  # turned, or PAL
    assert af._decoder_threads(0, 720, 480) == 0  # decoding in the caller's thread: FFmpeg's
    assert af._decoder_threads(8, 1920, 1080) == 0  # decoding needs every core


def test_pass_decoder_threads_are_set_and_give_the_same_frames(structured_video, monkeypatch):  # noqa: F811
    path = structured_video[0]
    seen = []
    import rainset.video as video

    real_open = video._open_video

    def spy(p):
        container, stream = real_open(p)
        seen.append(stream)
        return container, stream

    monkeypatch.setattr(video, "_open_video", spy)
    monkeypatch.setattr(af, "_decoder_threads", lambda ahead, w, h: 1 if ahead else 0)
    frames = af.iter_decoded(path, ahead=8)
    first = next(frames)
    assert seen[-1].codec_context.thread_count == 1
    ahead = [first.analysis_luma(1), *(d.analysis_luma(1) for d in frames)]
    plain = [d.analysis_luma(1) for d in af.iter_decoded(path)]
    assert len(ahead) == len(plain) and all(np.array_equal(a, b) for a, b in zip(ahead, plain))


@pytest.mark.parametrize("n", range(1, 26))
def test_stack_median_is_numpys(n):
    """The chunk median of the foreground test: a selection network, numpy's numbers."""
    from rainset.timelapse import _stack_median

    rng = np.random.default_rng(n)
    for levels in (256, 3):  # and many ties
        imgs = [rng.integers(0, levels, (12, 17), dtype=np.uint8) for _ in range(n)]
        got = _stack_median(imgs)
        assert got.dtype == np.float32
        assert np.array_equal(got, np.median(np.stack(imgs), axis=0).astype(np.float32))
