"""Applying a trained model: tiled inference, checkpoints, `rainset derain`, light imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch") if os.environ.get("CI") != "true" else __import__("torch")

from click.testing import CliRunner  # noqa: E402

from rainset.errors import InputError  # noqa: E402
from rainset.image import read_image, write_image  # noqa: E402
from rainset.train.derain import derain_image, load_model  # noqa: E402
from rainset.train.spanet import SPANet  # noqa: E402
from rainset_cli.main import cli  # noqa: E402


class _Echo(torch.nn.Module):
    """Returns its input: tiled inference must then reproduce the image exactly."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x + self.w, [x[:, :1]]


def test_tiles_cover_and_blend_exactly():
    img = np.random.default_rng(0).integers(0, 256, (70, 101, 3), dtype=np.uint8)
    out = derain_image(_Echo(), img, tile=32, overlap=8)
    np.testing.assert_array_equal(out, img)


def test_single_tile_equals_the_model_output():
    torch.manual_seed(0)
    model = SPANet().eval()
    img = np.random.default_rng(1).integers(0, 256, (24, 30, 3), dtype=np.uint8)
    out = derain_image(model, img, tile=64)
    with torch.no_grad():
        want, _ = model(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
    want = np.clip(np.rint(want[0].permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, want)
    with pytest.raises(ValueError, match="uint8"):
        derain_image(model, img.astype(np.float32))


@pytest.fixture()
def checkpoint(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = SPANet()
    path = tmp_path / "ckpt" / "model.safetensors"
    path.parent.mkdir()
    save_file(model.state_dict(), str(path), metadata={"rainset": json.dumps({"step": 7})})
    return path, model


def test_load_model_from_file_or_folder(checkpoint, tmp_path):
    path, model = checkpoint
    for where in (path, path.parent):
        loaded, meta = load_model(where)
        assert meta == {"step": 7} and not loaded.training
        for k, v in loaded.state_dict().items():
            torch.testing.assert_close(v, model.state_dict()[k])
    with pytest.raises(InputError, match="no SPANet weights"):
        load_model(tmp_path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="not a readable safetensors"):
        load_model(bad)


def test_derain_command_on_images_folders_and_video(checkpoint, tmp_path):
    from rainset.video import probe, write_video

    path, model = checkpoint
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    write_image(tmp_path / "in" / "one.jpg", img)
    write_image(tmp_path / "frames" / "sub" / "f1.png", img)
    write_video(tmp_path / "clip.mp4", [img[:16, :16]] * 3, fps=5)
    out = tmp_path / "out"
    args = ["derain", str(path.parent), str(tmp_path / "in" / "one.jpg"), str(tmp_path / "frames")]
    args += [str(tmp_path / "clip.mp4"), "-o", str(out), "--device", "cpu"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    got = read_image(out / "one.png")
    want = derain_image(model.eval(), read_image(tmp_path / "in" / "one.jpg"))
    np.testing.assert_array_equal(got, want)
    assert (out / "frames" / "sub" / "f1.png").is_file()
    info = probe(out / "clip.mp4", decode=True)
    assert info.frame_count == 3 and (info.width, info.height) == (16, 16)


def test_import_rainset_and_help_do_not_import_torch():
    code = (
        "import sys, rainset, rainset.importer, rainset_cli.main\n"
        "from click.testing import CliRunner\n"
        "r = CliRunner().invoke(rainset_cli.main.cli, ['--help'])\n"
        "assert r.exit_code == 0 and 'validate' in r.output and 'derain' in r.output\n"
        "r = CliRunner().invoke(rainset_cli.main.cli, ['validate', '--help'])\n"
        "assert r.exit_code == 0\n"
        "print('torch' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
