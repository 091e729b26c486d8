import json

import numpy as np
import pytest
from click.testing import CliRunner

from rainset.buildgt import BuildOptions, plan_windows
from rainset.dataset import check, open_dataset
from rainset.inputs import scene_id
from rainset.video import read_frames, write_video
from rainset_cli.main import cli


def run(args, input=None):
    return CliRunner().invoke(cli, args, input=input, catch_exceptions=False)


def test_windows_leave_room_to_grow_to_the_cap():
    opts = BuildOptions(density="sparse", max_frames=50, windows=3)
    wins, notes = plan_windows(200, 25.0, opts)
    assert [(w.start, w.capacity) for w in wins] == [(0, 50), (50, 50), (100, 50)]
    assert notes == []
    # Not enough room: fewer windows, and a note says so.
    wins, notes = plan_windows(120, 25.0, opts)
    assert [w.start for w in wins] == [0, 50, 100] and wins[2].capacity == 20
    wins, notes = plan_windows(110, 25.0, opts)
    assert len(wins) == 2 and "room for 2" in notes[0]


def test_windows_every_seconds_and_start_time():
    opts = BuildOptions(density="sparse", max_frames=40, windows=2, every=4.0, start=2.0, start_seconds=True)
    wins, _ = plan_windows(1000, 25.0, opts)
    assert [w.start for w in wins] == [50, 150]
    with pytest.raises(ValueError, match="overlap"):
        plan_windows(1000, 25.0, BuildOptions(max_frames=300, windows=2, every=4.0))


def test_short_video_uses_what_is_there():
    wins, notes = plan_windows(49, 8.0, BuildOptions(density="normal"))
    assert wins[0].capacity == 49 and "fewer than the 100" in notes[0]


def test_scene_ids_do_not_depend_on_the_other_inputs(tmp_path):
    # One rule (rainset.inputs.scene_id): the stem, or with root the relative path; a repeated
    # stem is refused by plan_sources (tests/test_scenes.py), not renamed.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    paths = [tmp_path / "a" / "v.mp4", tmp_path / "b" / "v.mp4", tmp_path / "v.mp4"]
    for p in paths:
        p.write_bytes(b"x")
    assert [scene_id(p) for p in paths] == ["v", "v", "v"]
    assert [scene_id(p, root=tmp_path) for p in paths] == ["a/v", "b/v", "v"]


def test_accept_writes_a_checked_dataset_close_to_the_background(static_clip, tmp_path):
    clip, bg = static_clip(n=30)
    out = tmp_path / "out"
    r = run(["build-gt", str(clip), "--density", "sparse", "--review", "accept", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert check(out) == []
    ds = open_dataset(out)
    samples = list(ds.samples())
    assert len(samples) == 20  # sparse: N = 20
    s = samples[0]
    assert s["n_frames"] == 20 and s["review"] == "accept" and s["p_hat"] is not None
    assert s["mask_threshold"] == 13 and s["source"].endswith("clip.mp4")
    clean = ds.load(s, "clean")
    # The background as the codec renders it (4:2:0 chroma at 64x48 loses colour detail).
    write_video(tmp_path / "bg.mp4", [bg] * 3, fps=10, crf=10)
    ref = read_frames(tmp_path / "bg.mp4")[0].astype(int)
    rainy = ds.load(s, "rainy")
    # Rain removed: streak-bright pixels are gone from the clean image, not from a rainy frame.
    assert ((clean - ref).max(axis=2) >= 13).mean() < 0.002
    assert ((rainy - ref).max(axis=2) >= 13).mean() > 0.005
    assert np.abs(clean - ref).mean() < 2.5
    mask = ds.load_mask(s)
    np.testing.assert_array_equal(mask, (rainy.astype(int) - clean).max(axis=2) >= 13)
    assert (out / s["preview"]).is_file()
    review = json.loads((out / "review.json").read_text())
    assert review["decisions"]["clip/w00/n20"]["action"] == "accept"


def test_prompt_more_more_accept_then_resume_asks_nothing(static_clip, tmp_path):
    clip, _ = static_clip(n=160, h=32, w=48)
    out = tmp_path / "out"
    args = ["build-gt", str(clip), "--review", "prompt", "--write", "clean", "-o", str(out)]
    r = run(args, input="m\nm\na\n")
    assert r.exit_code == 0, r.output
    decisions = json.loads((out / "review.json").read_text())["decisions"]
    assert [decisions[f"clip/w00/n{n}"]["action"] for n in (100, 120, 140)] == ["more", "more", "accept"]
    (rec,) = open_dataset(out).samples()
    assert rec["n_frames"] == 140 and rec["frames"] == [0, 140]
    # A second run asks nothing (no input to give) and changes nothing.
    before = (out / "manifest.jsonl").read_bytes()
    r = run(args, input="")
    assert r.exit_code == 0, r.output
    assert "accept" not in r.output.split("preview:")[0] or "[a]ccept" not in r.output
    assert (out / "manifest.jsonl").read_bytes() == before


def test_interrupted_review_resumes_without_asking_again(static_clip, tmp_path):
    clip, _ = static_clip(n=160, h=32, w=48)
    out = tmp_path / "out"
    args = ["build-gt", str(clip), "--review", "prompt", "--write", "clean", "-o", str(out)]
    # The user answers "more" once, then the session dies (no more input: click aborts).
    r = CliRunner().invoke(cli, args, input="m\n")
    assert r.exit_code != 0
    assert json.loads((out / "review.json").read_text())["decisions"]["clip/w00/n100"]["action"] == "more"
    # Rerun: the first question is not asked again; the next one (N=120) is.
    r = run(args, input="a\n")
    assert r.exit_code == 0, r.output
    assert r.output.count("[a]ccept") == 1
    (rec,) = open_dataset(out).samples()
    assert rec["n_frames"] == 120


def test_more_past_the_cap_is_refused(static_clip, tmp_path):
    clip, _ = static_clip(n=40, h=32, w=48)
    out = tmp_path / "out"
    r = run(
        ["build-gt", str(clip), "--density", "sparse", "--max-frames", "30", "--review", "prompt",
         "--write", "clean", "-o", str(out)],
        input="m\nm\na\n",
    )
    assert r.exit_code == 0, r.output
    assert "Cannot add frames" in r.output
    (rec,) = open_dataset(out).samples()
    assert rec["n_frames"] == 30


def test_decisions_file_replays_identically(static_clip, tmp_path):
    clip, _ = static_clip(n=60, h=32, w=48)
    a, b = tmp_path / "a", tmp_path / "b"
    base = ["build-gt", str(clip), "--density", "sparse", "--max-frames", "60"]
    r = run([*base, "--review", "prompt", "-o", str(a)], input="m\nr\nstreaks left\n")
    assert r.exit_code == 1 and "every window was rejected" in r.output  # an empty result is an error
    r = run([*base, "--review", "file", "--decisions", str(a / "review.json"), "-o", str(b)])
    assert r.exit_code == 1 and "every window was rejected" in r.output, r.output
    da = json.loads((a / "review.json").read_text())["decisions"]
    db = json.loads((b / "review.json").read_text())["decisions"]
    assert {k: v["action"] for k, v in da.items()} == {k: v["action"] for k, v in db.items()}
    assert da["clip/w00/n30"]["reason"] == "streaks left"
    assert list(open_dataset(b).samples()) == []  # rejected: nothing written


def test_moving_camera_is_refused_with_the_measured_shift(tmp_path):
    from conftest import textured_background

    from rainset.video import write_video

    big = textured_background(120, 160, seed=3)
    frames = [np.ascontiguousarray(big[20:68, 2 * k : 2 * k + 64]) for k in range(30)]
    clip = tmp_path / "pan.mp4"
    write_video(clip, frames, fps=10)
    r = CliRunner().invoke(cli, ["build-gt", str(clip), "--density", "sparse", "--review", "accept", "-o", str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "camera moves" in r.output and "px" in r.output and "--allow-motion" in r.output
    r = run(["build-gt", str(clip), "--density", "sparse", "--review", "accept", "--allow-motion", "-o", str(tmp_path / "o2")])
    assert r.exit_code == 0, r.output


def test_several_inputs_with_workers_match_one_worker(static_clip, tmp_path):
    c1, _ = static_clip(n=25, name="one.mp4", seed=1)
    c2, _ = static_clip(n=25, name="two.mp4", seed=2)
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        r = run(["build-gt", str(c1), str(c2), "--density", "sparse", "--review", "accept",
                 "--workers", str(workers), "-o", str(out)])
        assert r.exit_code == 0, r.output
        assert check(out) == []
        outs.append(out)
    recs = [sorted((s["id"], s["p_hat"]) for s in open_dataset(o).samples()) for o in outs]
    assert recs[0] == recs[1] and len(recs[0]) == 40
    for rel in ("clean/one/w00.png", "clean/two/w00.png"):
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes()


def test_usage_errors_name_the_option(static_clip, tmp_path):
    clip, _ = static_clip(n=10, h=32, w=48)
    r = CliRunner().invoke(cli, ["build-gt", str(clip), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--review" in r.output  # no terminal: no silent hang
    r = CliRunner().invoke(cli, ["build-gt", str(clip), "--review", "accept", "--start", "soon", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--start" in r.output
    r = CliRunner().invoke(cli, ["build-gt", str(clip), "--review", "file", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--decisions" in r.output
    r = CliRunner().invoke(cli, ["build-gt", str(clip), "--review", "accept", "--crop", "1,2", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--crop" in r.output


def test_auto_review_adds_frames_until_the_score_passes(static_clip, tmp_path):
    clip, _ = static_clip(n=60, h=32, w=48)
    out = tmp_path / "out"
    r = run(["build-gt", str(clip), "--density", "sparse", "--frames", "10", "--review", "auto",
             "--auto-threshold", "0.4", "--write", "clean", "-o", str(out)])
    assert r.exit_code == 0, r.output
    decisions = json.loads((out / "review.json").read_text())["decisions"]
    actions = [d["action"] for d in sorted(decisions.values(), key=lambda d: d["n_frames"])]
    assert actions[-1] in ("accept", "reject") and set(actions[:-1]) <= {"more"}
    scores = [d["score"] for d in sorted(decisions.values(), key=lambda d: d["n_frames"])]
    assert all(d["by"] == "auto" for d in decisions.values())
    if actions[-1] == "accept":
        assert scores[-1] <= 0.4 and all(s > 0.4 for s in scores[:-1])


def test_other_options_into_a_finished_folder_are_refused_and_keep_it(static_clip, tmp_path):
    clip, _ = static_clip(n=30)
    out = tmp_path / "out"
    assert run(["build-gt", str(clip), "--density", "sparse", "--review", "accept", "-o", str(out)]).exit_code == 0
    before = (out / "manifest.jsonl").read_bytes()
    r = CliRunner().invoke(cli, ["build-gt", str(clip), "--density", "sparse", "--select", "rgb", "--review", "accept", "-o", str(out)])
    assert r.exit_code == 1 and "review.json" in r.output
    assert (out / "manifest.jsonl").read_bytes() == before and check(out) == []


def test_crop_start_and_windows(static_clip, tmp_path):
    clip, _ = static_clip(n=50, h=48, w=64)
    out = tmp_path / "out"
    r = run(["build-gt", str(clip), "--density", "sparse", "--max-frames", "20", "--windows", "2",
             "--start", "0.5s", "--crop", "8,4,40,32", "--review", "accept", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert check(out) == []
    ds = open_dataset(out)
    by_window = {}
    for s in ds.samples():
        by_window.setdefault(s["window"], []).append(s["frame"])
    # 10 fps: 0.5 s is frame 5; windows reserve 20 frames each.
    assert sorted(by_window[0]) == list(range(5, 25)) and sorted(by_window[1]) == list(range(25, 45))
    assert ds.load(next(ds.samples()), "clean").shape == (32, 40, 3)
    r = CliRunner().invoke(cli, ["build-gt", str(clip), "--review", "accept", "--crop", "40,40,40,40", "-o", str(tmp_path / "o2")])
    assert r.exit_code == 1 and "--crop" in r.output


def test_demo_recovers_the_photo_better_than_a_rainy_frame(tmp_path):
    import re

    r = run(["demo", "-o", str(tmp_path / "demo"), "--frames", "16"])
    assert r.exit_code == 0, r.output
    clean_db, rainy_db = (float(x) for x in re.findall(r"([\d.]+) dB", r.output.replace("\n", " ")))
    assert clean_db > rainy_db + 5
    assert check(tmp_path / "demo" / "dataset") == []
    assert (tmp_path / "demo" / "example.mp4").stat().st_size > 0


def test_rerun_of_a_finished_build_rewrites_nothing(static_clip, tmp_path):
    clip, _ = static_clip(n=25)
    out = tmp_path / "out"
    args = ["build-gt", str(clip), "--density", "sparse", "--review", "accept", "-o", str(out)]
    assert run(args).exit_code == 0
    files = sorted(p for p in out.rglob("*.png"))
    stamps = [p.stat().st_mtime_ns for p in files]
    r = run(args)
    assert r.exit_code == 0, r.output
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert check(out) == []


def test_rerun_with_workers_rewrites_nothing(static_clip, tmp_path):
    c1, _ = static_clip(n=25, name="one.mp4", seed=1)
    c2, _ = static_clip(n=25, name="two.mp4", seed=2)
    out = tmp_path / "out"
    args = ["build-gt", str(c1), str(c2), "--density", "sparse", "--review", "accept", "--workers", "2", "-o", str(out)]
    assert run(args).exit_code == 0
    files = sorted(out.rglob("*.png"))
    stamps = [p.stat().st_mtime_ns for p in files]
    assert run(args).exit_code == 0
    assert [p.stat().st_mtime_ns for p in files] == stamps and check(out) == []
