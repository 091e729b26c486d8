"""One call per pipeline: ``rainset.build_gt``, ``find_pairs``, ``synthesize``,
``import_dataset`` give the dataset their command gives, report progress, return results."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background
from dscompare import assert_same_dataset

import rainset
from rainset.errors import ParameterError
from rainset_cli.main import cli


def _cli(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from rainset.video import write_video

    root = tmp_path_factory.mktemp("clip")
    path = root / "street.mp4"
    write_video(path, rain_frames(textured_background(48, 64, 3), 30, seed=3), fps=10, crf=10)
    return path


def test_build_gt_call_and_command_make_the_same_dataset(clip, tmp_path):
    _cli("build-gt", clip, "-o", tmp_path / "cmd", "--review", "auto", "--density", "sparse",
         "--frames", "6", "--max-frames", "12", "--windows", "2")  # fmt: skip
    events = []
    result = rainset.build_gt(clip, tmp_path / "api", review="auto", density="sparse", frames=6,
                              max_frames=12, windows=2, progress=events.append)  # fmt: skip
    assert_same_dataset(tmp_path / "cmd", tmp_path / "api")
    # --review auto: the library's threshold, the same from Python and the command line
    log = json.loads((tmp_path / "api" / "review.json").read_text())
    assert {d["by"] for d in log["decisions"].values()} == {"auto"}
    assert result.written + len(result.refused) == 2 == len(result.windows)
    assert result.counts["samples"] == 6 * result.written
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "frames" in kinds and "decision" in kinds
    assert all(e.pipeline == "build-gt" for e in events)


def test_build_gt_file_review_runs_without_a_terminal_and_resumes(clip, tmp_path):
    first = rainset.build_gt([clip], tmp_path / "a", review="accept", density="sparse", frames=6, max_frames=6)
    assert first.written == 1 and first.ok
    # replay those decisions into another folder: no prompt, no terminal
    again = rainset.build_gt([clip], tmp_path / "b", review="file", decisions=tmp_path / "a" / "review.json",
                             density="sparse", frames=6, max_frames=6)  # fmt: skip
    assert again.written == 1
    with pytest.raises(ParameterError) as err:
        rainset.build_gt([clip], tmp_path / "c", review="prompt")
    assert err.value.param == "review" and "--" not in err.value.message


def test_build_gt_several_inputs_a_failed_one_is_reported_not_raised(clip, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    result = rainset.build_gt([clip, bad], tmp_path / "gt", density="sparse", frames=6, max_frames=6)
    assert not result.ok and [f.what for f in result.failed] == ["broken"]
    assert result.written == 1


def test_an_unknown_keyword_names_itself(clip, tmp_path):
    with pytest.raises(ParameterError) as err:
        rainset.build_gt(clip, tmp_path / "gt", densty="sparse")
    assert err.value.param == "densty"
    assert not (tmp_path / "gt").exists()


def test_find_pairs_call_and_command_make_the_same_dataset(tmp_path):
    from rainset.video import write_video

    root = tmp_path / "footage"
    root.mkdir()
    write_video(root / "cam1.mp4", rain_frames(textured_background(64, 96, 1), 30, seed=1), fps=10, crf=12)
    _cli("pairs", root, "-o", tmp_path / "cmd", "-n", "12", "--pairs-per-scene", "5")
    events = []
    result = rainset.find_pairs(root, tmp_path / "api", n_frames=12, pairs_per_segment=5, progress=events.append)
    assert_same_dataset(tmp_path / "cmd", tmp_path / "api")
    assert result.segments >= 1 and result.pairs == 5 * result.segments
    assert result.written == 12 * result.segments
    assert [e.kind for e in events if e.kind in ("start", "written", "done")] == ["start", "written", "done"]


def test_synthesize_call_and_command_make_the_same_dataset(tmp_path):
    _cli("synth", "-o", tmp_path / "cmd", "--limit", "2", "--max-size", "48", "--per-image", "2")
    events = []
    result = rainset.synthesize(None, tmp_path / "api", limit=2, max_size=48, per_image=2, progress=events.append)
    assert_same_dataset(tmp_path / "cmd", tmp_path / "api")
    assert (result.written, result.skipped) == (4, 0)
    assert sum(e.kind == "written" for e in events) == 4 and events[-1].done == 4
    again = rainset.synthesize(None, tmp_path / "api", limit=2, max_size=48, per_image=2)
    assert (again.written, again.skipped) == (0, 4)


def test_synthesize_takes_angles_as_the_command_line_writes_them(tmp_path):
    a = rainset.synthesize(None, tmp_path / "a", limit=1, max_size=32, angles="0,15")
    b = rainset.synthesize(None, tmp_path / "b", limit=1, max_size=32, angles=(0.0, -15.0, 15.0))
    assert a.written == b.written == 1
    assert_same_dataset(tmp_path / "a", tmp_path / "b")


def test_import_dataset_call_and_command_make_the_same_dataset(tmp_path):
    from rainset.image import write_image

    rain, clean = tmp_path / "rain", tmp_path / "clean"
    rain.mkdir()
    clean.mkdir()
    for i in range(3):
        bg = textured_background(24, 32, i)
        write_image(clean / f"norain-{i}.png", bg)
        write_image(rain / f"rain-{i}.png", next(rain_frames(bg, 1, seed=i)))
    _cli("import", "paired", rain, clean, "-o", tmp_path / "cmd")
    result = rainset.import_dataset("paired", (rain, clean), tmp_path / "api")
    assert_same_dataset(tmp_path / "cmd", tmp_path / "api")
    assert result.written == 3 == result.counts["samples"]


def test_readme_python_calls_name_real_calls_and_options():
    """Every call in the README's "From Python" table exists and takes the keywords it shows."""
    import ast
    import dataclasses
    import inspect
    import re
    from pathlib import Path

    import rainset.options as O

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("## From Python", 1)[1].split("\n## ", 1)[0]
    calls = re.findall(r"\| `rainset [^`]+` \| `(rainset\.[a-z_]+\(.*?\))` \|", section)
    assert len(calls) >= 5
    known = set().union(*({f.name for f in dataclasses.fields(c)} for c in (
        O.BuildOptions, O.ReviewOptions, O.OutputOptions, O.RunOptions, O.SceneOptions, O.PairsOptions,
        O.StaticConfig, O.SynthOptions, O.SynthConfig, O.ImportOptions, O.ExportOptions)))  # fmt: skip
    for call in calls:
        node = ast.parse(call, mode="eval").body
        fn = getattr(rainset, node.func.attr)
        params = inspect.signature(fn).parameters
        for kw in node.keywords:
            assert kw.arg in params or kw.arg in known, (call, kw.arg)


def test_build_gt_auto_review_in_worker_processes(tmp_path):
    """The auto and file reviewers reach worker processes (they were closures, which
    multiprocessing cannot send); the dataset is the one a single process writes."""
    from rainset.video import write_video

    clips = []
    for i in range(2):
        clips.append(tmp_path / f"c{i}.mp4")
        write_video(clips[-1], rain_frames(textured_background(32, 48, i), 10, seed=i), fps=10, crf=10)
    kw = {"density": "sparse", "frames": 6, "max_frames": 8}
    _cli("build-gt", *clips, "-o", tmp_path / "one", "--review", "auto", "--density", "sparse", "--frames", "6",
         "--max-frames", "8")  # fmt: skip
    two = rainset.build_gt(clips, tmp_path / "two", review="auto", workers=2, **kw)
    assert two.ok and len(two.windows) == 2
    assert_same_dataset(tmp_path / "one", tmp_path / "two")
    again = rainset.build_gt(clips, tmp_path / "replay", review="file", decisions=tmp_path / "one" / "review.json",
                             workers=2, **kw)  # fmt: skip
    assert again.ok and [w.decision for w in again.windows] == [w.decision for w in two.windows]


def test_build_gt_rerun_resumes_and_says_so(clip, tmp_path):
    kw = {"density": "sparse", "frames": 6, "max_frames": 6}
    first = rainset.build_gt(clip, tmp_path / "gt", **kw)
    again = rainset.build_gt(clip, tmp_path / "gt", **kw)
    assert (first.written, first.skipped) == (1, 0)
    assert (again.written, again.skipped) == (0, 1)
    assert again.counts == first.counts


def test_a_scene_id_clash_names_the_calls_parameter(clip, tmp_path):
    import shutil

    from rainset.errors import InputError

    copy = tmp_path / "copy.mp4"
    shutil.copy(clip, copy)
    with pytest.raises(InputError, match="allow_duplicate_sources"):
        rainset.build_gt([clip, copy], tmp_path / "gt", density="sparse", frames=6, max_frames=6)
    result = rainset.build_gt([clip, copy], tmp_path / "gt", density="sparse", frames=6, max_frames=6,
                              allow_duplicate_sources=True)  # fmt: skip
    assert result.written == 2
