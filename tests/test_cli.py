import subprocess
import sys

import numpy as np
from click.testing import CliRunner

import rainset
from rainset.dataset import DatasetWriter
from rainset.image import write_image
from rainset_cli.main import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error_line(result):
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0 and rainset.__version__ in r.output


def test_info_on_frame_folder_with_stray_file(tmp_path):
    for i in (1, 2, 10):
        write_image(tmp_path / f"f{i}.png", np.zeros((6, 8, 3), np.uint8))
    (tmp_path / "Thumbs.db").write_bytes(b"\0\1")
    r = invoke("info", tmp_path)
    assert r.exit_code == 0, r.output
    assert "3" in r.output and "8x6" in r.output


def test_info_on_video_decodes_every_frame(static_clip):
    clip, _ = static_clip(n=12)
    r = invoke("info", clip)
    assert r.exit_code == 0, r.output
    assert "12" in r.output and "64x48" in r.output and "h264" in r.output


def test_bad_inputs_give_one_line_and_exit_1(tmp_path, static_clip):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = invoke("info", empty)
    assert r.exit_code == 1 and "empty" in one_error_line(r)

    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    r = invoke("info", text)
    assert r.exit_code == 1 and "notes.mp4" in one_error_line(r)

    clip, _ = static_clip(n=30)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    r = invoke("info", cut)
    assert r.exit_code == 1 and "cut.mp4" in one_error_line(r)

    mixed = tmp_path / "mixed"
    write_image(mixed / "a1.png", np.zeros((6, 8, 3), np.uint8))
    write_image(mixed / "a2.png", np.zeros((8, 8, 3), np.uint8))
    r = invoke("info", mixed)
    assert r.exit_code == 1 and "a2.png" in one_error_line(r)


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "x.mp4").write_text("no")
    r = CliRunner().invoke(cli, ["--debug", "info", str(tmp_path / "x.mp4")])
    assert r.exit_code != 0 and r.exception is not None and not isinstance(r.exception, SystemExit)


def test_usage_error_exits_2_naming_the_option(tmp_path):
    r = invoke("info", tmp_path / "nope")
    assert r.exit_code == 2 and "PATH" in r.output


def _tiny_dataset(root):
    with DatasetWriter(root, kind="paired", params={}) as w:
        for i in range(3):
            img = np.full((8, 8, 3), 10 * i, np.uint8)
            r = w.write_image(f"rainy/s{i}", img)
            c = w.write_image(f"clean/s{i}", img)
            w.add({"id": f"s{i}", "scene": f"scene{i}", "rainy": r, "clean": c})


def test_check_and_info_on_dataset(tmp_path):
    root = tmp_path / "ds"
    _tiny_dataset(root)
    r = invoke("check", root)
    assert r.exit_code == 0 and "ok" in r.output
    r = invoke("info", root)
    assert r.exit_code == 0 and "scene1" in r.output and "check: ok" in r.output
    (root / "clean" / "s1.png").unlink()
    r = invoke("check", root)
    assert r.exit_code == 1 and "s1.png" in r.output


def test_python_m_and_no_torch_at_import():
    code = (
        "import sys, rainset, rainset_cli.main, rainset.buildgt, rainset.dataset, rainset.synth;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    out = subprocess.run([sys.executable, "-m", "rainset_cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "build-gt" in out.stdout
