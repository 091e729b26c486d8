"""One static-camera policy (rainset.motion) for build-gt and pairs, on clips with known motion."""

from __future__ import annotations

import numpy as np
import pytest
from motionclips import camera, clip, jitter, pan, scene, still, zoom

from rainset.motion import MotionPolicy
from rainset.pairs import analyse_scene
from rainset.registration import MotionMeter, measure_motion, register_frames
from rainset.timelapse import StaticConfig

H, W = 240, 320
SIZE = (W, H)


def _clips():
    tex, low = scene(H, W, seed=0), scene(H, W, seed=1, texture="low")
    return {
        "static textured + rain": clip(tex, still(40, SIZE), streaks=60),
        "static low-texture + dense rain": clip(low, still(40, SIZE), streaks=400, seed=2),
        "pan 20 px over 30 frames": clip(tex, pan(30, SIZE, 20.0) + [camera(-20.0, 0, size=SIZE)] * 10, seed=3),
        "zoom 5 % over 30 frames": clip(tex, zoom(30, SIZE, 0.05) + [camera(scale=1.05, size=SIZE)] * 10, seed=4),
    }


CLIPS = _clips()
STATIC = ("static textured + rain", "static low-texture + dense rain")


def buildgt_check(frames: np.ndarray, start: int = 0, n: int = 30):
    """build-gt's window check on frames ``start .. start + n - 1`` (as rainset.buildgt runs it)."""
    meter = MotionMeter(MotionPolicy())
    for f in frames[start : start + n]:
        meter.update(f)
    return meter.report(n)


@pytest.mark.parametrize("name", list(CLIPS))
def test_both_pipelines_give_the_same_verdict(name):
    frames = CLIPS[name]
    scores, segments, _, _ = analyse_scene(frames, config=StaticConfig())
    for seg in segments:  # every kept segment is a window build-gt accepts
        assert buildgt_check(frames, seg.start, seg.length).static, (name, seg)
    if not segments:  # no static 30-frame stretch: build-gt refuses frames 0-29
        assert not buildgt_check(frames).static, name
    assert bool(segments) == (name in STATIC), (name, segments)


def test_static_textured_rain_is_accepted_with_full_confidence():
    rep = measure_motion(CLIPS["static textured + rain"])
    assert rep.static and rep.max_shift < 0.3 and rep.unmeasured == 0 and rep.confidence > 0.8


def test_low_texture_dense_rain_is_accepted_and_reported_unmeasured():
    frames = CLIPS["static low-texture + dense rain"]
    rep = buildgt_check(frames)
    assert rep.static
    assert rep.unmeasured >= 20 and rep.confidence < 0.5
    assert "unmeasured" in rep.describe()
    scores, segments, _, _ = analyse_scene(frames)
    assert [(s.start, s.stop) for s in segments] == [(0, 40)]
    assert np.median([s.confidence for s in scores]) < 0.5


def test_pan_and_zoom_are_refused_with_the_measured_figure():
    pan_rep = buildgt_check(CLIPS["pan 20 px over 30 frames"])
    # 20 px between frames 0 and 29; the 3-frame medians at the ends see frames 1 and 28
    assert not pan_rep.static and pan_rep.max_shift == pytest.approx(20.0 * 27 / 29, abs=0.3)
    zoom_rep = buildgt_check(CLIPS["zoom 5 % over 30 frames"])
    # 5 % at the outer tile centres (about 107 x 80 px from the centre): about 6.7 px
    assert not zoom_rep.static and 5.5 < zoom_rep.max_shift < 7.5
    assert max(m.scale for m in zoom_rep.frames) == pytest.approx((1 + 0.05 * 28 / 29) / (1 + 0.05 / 29), abs=0.004)


def test_known_subpixel_jitter_is_measured_within_a_tenth_of_a_pixel():
    mots, true = jitter(20, (640, 480), amp=0.8, seed=5)
    frames = clip(scene(480, 640, seed=6), mots, streaks=120, seed=7)
    est = np.array([(m.dx, m.dy) for m in register_frames(frames)])
    assert np.abs(est - true[:, :2]).max() < 0.1


def test_a_passing_object_in_one_tile_is_not_camera_motion():
    bg = scene(H, W, seed=8)
    frames = clip(bg, still(12, SIZE), seed=9)
    for i, f in enumerate(frames):  # a bright car crossing the top-left tile
        f[20:60, 5 * i : 5 * i + 40] = (220, 30, 30)
    rep = measure_motion(frames)
    assert rep.static and rep.max_shift < 0.3


def test_the_limit_has_one_meaning_and_one_default():
    from rainset.buildgt import BuildOptions

    pol = MotionPolicy()
    assert BuildOptions().policy == StaticConfig().policy == pol
    assert BuildOptions(max_shift=2.5).policy.max_shift == StaticConfig(max_shift=2.5).policy.max_shift


def test_a_picture_that_changes_beyond_measuring_is_motion_not_confidence_zero():
    # A whip pan: 40 px a frame, beyond what a 106 x 80 tile's correlation follows. The tiles
    # of the textured reference stop matching; that is motion, not a featureless scene.
    big = scene(H, 4 * W, seed=21)
    frames = clip(big, [camera(-40.0 * i, 0.0, size=(4 * W, H)) for i in range(30)], seed=22)[:, :, :W]
    rep = buildgt_check(np.ascontiguousarray(frames))
    assert not rep.static and rep.max_shift == float("inf")
    _, segments, rejections, _ = analyse_scene(np.ascontiguousarray(frames))
    assert not segments and rejections[0].reason == "moving camera"
    assert "beyond measuring" in rejections[0].detail


def test_both_commands_show_the_policy_defaults():
    from rainset_cli.main import cli

    for name in ("build-gt", "pairs"):
        params = {p.name: p for p in cli.commands[name].params}
        assert params["max_shift"].default == MotionPolicy().max_shift, name
        assert params["stabilize"].flag_value == "translation" and params["stabilize"].default is None, name
