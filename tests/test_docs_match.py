"""The documentation shows what the tools really do (issue 15, "docs that do not match").

Sample records in docs/format.md are compared with records the commands write now: the same
keys in the same order, and the same path shapes (scene names and numbers aside).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import rain_frames, textured_background

from rainset_cli.main import cli

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _json_after(text: str, marker: str) -> dict:
    """The first ```json block after ``marker`` in ``text``, as one record."""
    at = text.index(marker)
    block = re.search(r"```json\n(.*?)\n```", text[at:], re.S)
    assert block, f"no JSON block after {marker!r}"
    return json.loads(block.group(1).splitlines()[0])


def _shape(value, scene: str):
    """A record value with its scene name and digits made generic, recursively."""
    if isinstance(value, dict):
        return {k: _shape(v, scene) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v, scene) for v in value]
    if isinstance(value, str):
        return re.sub(r"\d", "0", value.replace(scene, "<scene>"))
    return type(value).__name__


def _assert_same_record_shape(doc: dict, real: dict, what: str) -> None:
    assert list(doc) == list(real), f"{what}: keys\n doc  {list(doc)}\n real {list(real)}"
    for key in ("rainy", "clean", "mask", "frame", "rain_map", "residual", "preview", "tiers"):
        if key in real:
            got, want = _shape(doc[key], doc["scene"]), _shape(real[key], real["scene"])
            assert got == want, f"{what}: {key} is {doc[key]!r} in the docs, {real[key]!r} written"
    if "labels" in real:
        assert list(doc["labels"]) == list(real["labels"]), f"{what}: label keys differ"


def _run(args):
    r = CliRunner().invoke(cli, ["-q", *[str(a) for a in args]])
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, list[dict]]:
    from rainset.image import write_image
    from rainset.video import write_video

    d = tmp_path_factory.mktemp("docs")
    write_video(d / "street01.mp4", rain_frames(textured_background(48, 64), 12), fps=10, crf=10)
    write_image(d / "photos" / "aachen" / "aachen_000001.png", textured_background(40, 48, seed=2))
    common = ["--review", "accept", "--frames", "12", "--max-frames", "12"]
    _run(["build-gt", d / "street01.mp4", "-o", d / "gt", *common])
    _run(["build-gt", d / "street01.mp4", "-o", d / "gtc", *common, "--write", "clean"])
    _run(["synth", d / "photos", "-o", d / "syn", "--format", "jpg"])

    def records(name):
        return [json.loads(line) for line in (d / name / "manifest.jsonl").read_text().splitlines()]

    return {"build-gt": records("gt"), "clean": records("gtc"), "synth": records("syn")}


def test_format_md_build_gt_record_is_what_build_gt_writes(written):
    text = (DOCS / "format.md").read_text(encoding="utf-8")
    doc = _json_after(text, "A line that `rainset build-gt")
    _assert_same_record_shape(doc, written["build-gt"][5], "build-gt record")


def test_format_md_synth_record_is_what_synth_writes(written):
    text = (DOCS / "format.md").read_text(encoding="utf-8")
    doc = _json_after(text, "A synthetic sample from `rainset synth")
    _assert_same_record_shape(doc, written["synth"][0], "synth record")


def test_format_md_clean_only_record_is_what_build_gt_writes(written):
    text = (DOCS / "format.md").read_text(encoding="utf-8")
    doc = _json_after(text, "## Clean-only datasets")
    _assert_same_record_shape(doc, written["clean"][0], "clean-only record")


def test_train_md_install_line_works_from_the_repository():
    """The project is not on a package index: ``pip install "rainset[train]"`` would fetch
    whatever else bears that name, or nothing."""
    text = (DOCS / "train.md").read_text(encoding="utf-8")
    assert 'pip install "rainset[train]"' not in text
    assert 'pip install ".[train]"' in text
    pyproject = (DOCS.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r"^train = \[", pyproject, re.M)


def test_pairs_md_commands_do_not_share_an_output_folder():
    """Each example command with other options writes its own folder (a second command with
    other options into the same folder is refused as a different dataset)."""
    text = (DOCS / "pairs.md").read_text(encoding="utf-8")
    block = re.search(r"```\n(rainset pairs .*?)```", text, re.S).group(1)
    seen: dict[str, list[str]] = {}
    for line in block.splitlines():
        if not line.startswith("rainset pairs"):
            continue
        words = shlex.split(line.split("#")[0])
        out = words[words.index("-o") + 1]
        rest = [w for i, w in enumerate(words) if w != "-o" and words[i - 1] != "-o"]
        seen.setdefault(out, []).append(" ".join(rest))
    for out, commands in seen.items():
        assert len(set(commands)) == 1, f"-o {out} is used by different commands: {commands}"


def test_docs_say_when_data_is_not_shipped():
    """A path to the development machine's data comes with a note that users do not have it."""
    for page in sorted(DOCS.glob("*.md")):
        paragraphs = page.read_text(encoding="utf-8").split("\n\n")
        for i, para in enumerate(paragraphs):
            if "../shared/" not in para or para.lstrip().startswith(("```", "root =", "rainset ")):
                continue
            near = "\n\n".join(paragraphs[max(0, i - 2) : i + 1])
            assert "not shipped" in near, f"{page.name}: {para[:120]!r}"
