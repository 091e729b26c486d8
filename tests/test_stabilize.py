"""--stabilize for build-gt and pairs (rainset.stabilize), on clips with a known camera motion."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from motionclips import clip, jitter, pan, scene, zoom

from rainset.image import read_image, write_image
from rainset.stabilize import common_crop, stabilize
from rainset_cli.main import cli

H, W = 240, 320
SIZE = (W, H)
BG = scene(H, W, seed=11)
SHAKE, SHAKE_TRUE = jitter(30, SIZE, amp=3.0, seed=12)  # +-3 px
TURN, TURN_TRUE = jitter(30, SIZE, amp=2.0, rot=0.5, seed=13)  # +-2 px, +-0.5 deg
CLIPS = {
    "shake": clip(BG, SHAKE, seed=14),
    "turn": clip(BG, TURN, seed=15),
    "pan": clip(BG, pan(30, SIZE, 20.0), seed=16),
    "zoom": clip(BG, zoom(30, SIZE, 0.05), seed=17),
}
# Which --stabilize modes each clip is accepted with (None: without stabilisation).
ACCEPTED = {"shake": {"translation", "similarity"}, "turn": {"similarity"}, "pan": set(), "zoom": {"similarity"}}


def test_shake_is_registered_within_a_tenth_of_a_pixel():
    stab, reg = stabilize(CLIPS["shake"], "translation")
    assert stab.ok, stab.refused
    assert np.abs(stab.matrices[:, :, 2] - SHAKE_TRUE[:, :2]).max() < 0.1
    assert np.allclose(stab.matrices[:, :, :2], np.eye(2))
    assert stab.residual < 0.1
    # the crop is what every frame covers (true motion up to 3 px per axis, a 2 px margin)
    x, y, w, h = stab.crop
    assert 3 <= x <= 6 and 3 <= y <= 6 and w <= W - 2 * x + 1 and reg.shape == (30, h, w, 3)


def test_rotation_needs_similarity_and_is_measured():
    stab, _ = stabilize(CLIPS["turn"], "translation")
    assert not stab.ok and "translation registration" in stab.refused and "rotation" in stab.refused
    stab, _ = stabilize(CLIPS["turn"], "similarity")
    assert stab.ok, stab.refused
    rot = np.degrees(np.arctan2(stab.matrices[:, 1, 0], stab.matrices[:, 0, 0]))
    assert np.abs(rot - TURN_TRUE[:, 2]).max() < 0.03  # degrees, positive clockwise on screen


def test_pan_is_refused_in_every_mode_with_its_figure():
    for mode in ("translation", "similarity"):
        stab, reg = stabilize(CLIPS["pan"], mode)
        assert not stab.ok and reg is None
        assert "19." in stab.refused and "10 px" in stab.refused


def test_zoom_is_refused_by_translation_and_fixed_by_similarity():
    stab, _ = stabilize(CLIPS["zoom"], "translation")
    assert not stab.ok and "limit 0.3 px" in stab.refused
    stab, reg = stabilize(CLIPS["zoom"], "similarity")
    assert stab.ok, stab.refused
    scale = np.hypot(stab.matrices[:, 0, 0], stab.matrices[:, 1, 0])
    assert scale[-1] == pytest.approx(1.05, abs=0.003)
    assert 0.8 < stab.crop_share < 0.92  # 1 / 1.05^2 less the margins


def test_common_crop_of_known_translations():
    m = np.array([[[1, 0, dx], [0, 1, dy]] for dx, dy in [(0, 0), (3.5, -1), (-2, 2)]], float)
    x, y, w, h = common_crop(m, (100, 200), margin=0)
    # reference x in [2, 195.5] and y in [1, 97] land inside every frame
    assert (x, y, x + w - 1, y + h - 1) == (2, 1, 195, 97)


# ----------------------------------------------------------------------------- the pipelines


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("stab")
    for name, frames in CLIPS.items():
        (root / name).mkdir()
        for i, f in enumerate(frames):
            write_image(root / name / f"f{i:03d}.png", f)
    return root


def _buildgt(folder, out, mode):
    args = ["build-gt", str(folder), "--frames", "30", "--review", "accept", "-o", str(out)]
    args += [] if mode is None else [f"--stabilize={mode}"]
    return CliRunner().invoke(cli, args)


def _pairs(folder, out, mode):
    args = ["pairs", str(folder), "-o", str(out)] + ([] if mode is None else [f"--stabilize={mode}"])
    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize("name", list(CLIPS))
def test_build_gt_and_pairs_agree_with_and_without_stabilize(folders, tmp_path, name):
    for mode in (None, "translation", "similarity"):
        g = _buildgt(folders / name, tmp_path / f"g{mode}", mode)
        p = _pairs(folders / name, tmp_path / f"p{mode}", mode)
        want = mode in ACCEPTED[name]
        assert (g.exit_code == 0) == want, (name, mode, g.output)
        assert (p.exit_code == 0) == want, (name, mode, p.output)
        if not want:
            assert "moves" in g.output or "cannot be stabilised" in g.output, g.output


def test_stabilized_build_gt_records_transforms_residual_and_crop(folders, tmp_path):
    out = tmp_path / "g"
    r = _buildgt(folders / "shake", out, "translation")
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(recs) == 30
    st = recs[0]["stabilize"]
    assert st["mode"] == "translation" and st["residual_px"] < 0.3 and st["crop_share"] > 0.9
    x, y, w, h = st["crop"]
    shifts = np.array([[r["transform"][2], r["transform"][5]] for r in recs])
    assert np.abs(shifts - SHAKE_TRUE[:, :2]).max() < 0.1
    clean = read_image(out / recs[0]["clean"])
    rainy = read_image(out / recs[7]["rainy"])
    assert clean.shape == rainy.shape == (h, w, 3)
    # the clean image is the registered background: close to the true scene over the crop
    truth = BG[y : y + h, x : x + w].astype(float)
    assert np.abs(clean.astype(float) - truth).mean() < 3.0


def test_stabilized_pairs_write_registered_frames(folders, tmp_path):
    out = tmp_path / "p"
    r = _pairs(folders / "shake", out, "translation")
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(recs) == 30 and all("transform" in r and r["stabilize"]["mode"] == "translation" for r in recs)
    frames = np.stack([read_image(out / r["frame"]).astype(float) for r in recs])
    x, y, w, h = recs[0]["stabilize"]["crop"]
    assert frames.shape[1:3] == (h, w)
    # registered: the temporal median is the scene, not a blur of 30 positions
    assert np.abs(np.median(frames, axis=0) - BG[y : y + h, x : x + w]).mean() < 3.0
