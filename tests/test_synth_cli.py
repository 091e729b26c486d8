"""``rainset synth`` through click's CliRunner on the real command group."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from rainset.dataset import check, open_dataset
from rainset.image import read_image, write_image
from rainset_cli.main import cli


def _run(*args):
    result = CliRunner().invoke(cli, ["-q", "synth", *map(str, args)])
    return result


def test_synth_bundled_photos_with_the_papers_angles(tmp_path):
    out = tmp_path / "out"
    r = _run("--angles", "0,15,30,40", "--per-image", 4, "--max-size", 64, "-o", out)
    assert r.exit_code == 0, r.output
    assert check(out) == []
    ds = open_dataset(out)
    recs = list(ds.samples())
    assert len(recs) == 4 * len(ds.meta["sources"])
    assert {r["labels"]["theta"] for r in recs} <= {0, 15, -15, 30, -30, 40, -40}
    assert all(len(s["sha256"]) == 64 and s["note"] for s in ds.meta["sources"])
    assert {r["split"] for r in recs} == {"train", "test"}
    # A rerun resumes: nothing is rewritten.
    manifest = (out / "manifest.jsonl").read_bytes()
    r = _run("--angles", "0,15,30,40", "--per-image", 4, "--max-size", 64, "-o", out)
    assert r.exit_code == 0, r.output
    assert (out / "manifest.jsonl").read_bytes() == manifest


def test_synth_clean_dir_options(tmp_path):
    photos = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.png"):
        write_image(photos / name, rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    out = tmp_path / "out"
    r = _run(
        photos,
        "-o",
        out,
        "--angles",
        "+30",
        "--radii",
        "0.6",
        "--density",
        "light",
        "--limit",
        2,
        "--blend",
        "screen",
        "--tiers",
        "lazy",
        "--tier-choice",
        "all",
        "--test-scenes",
        "b.png",
        "--seed",
        3,
    )
    assert r.exit_code == 0, r.output
    assert check(out) == []
    recs = list(open_dataset(out).samples())
    assert [x["id"] for x in recs] == ["a_v0", "b_v0"]
    assert [x["split"] for x in recs] == ["train", "test"]
    for x in recs:
        lab = x["labels"]
        assert (lab["theta"], lab["radius"], lab["density"], lab["blend"]) == (
            30,
            0.6,
            "light",
            "screen",
        )
        assert "tiers" not in x


def test_synth_tier_review_from_a_decisions_file(tmp_path):
    photos = tmp_path / "photos"
    write_image(photos / "a.png", np.full((24, 24, 3), 100, np.uint8))
    decisions = tmp_path / "d.json"
    decisions.write_text(
        json.dumps(
            {
                "decisions": {
                    "a.png/w00/n3": {"action": "more"},
                    "a.png/w00/n5": {"action": "accept"},
                }
            }
        )
    )
    out = tmp_path / "out"
    r = _run(
        photos, "-o", out, "--tier-choice", "review", "--review", "file", "--decisions", decisions
    )
    assert r.exit_code == 0, r.output
    (rec,) = open_dataset(out).samples()
    assert rec["tier"] == "5x5"
    assert check(out) == []


def test_synth_preview_sheet(tmp_path):
    img = tmp_path / "img.png"
    write_image(img, np.full((50, 70, 3), 60, np.uint8))
    sheet = tmp_path / "sheet.png"
    r = _run("--preview", img, "-o", sheet, "--angles", "0,15", "--radii", "0.2,1.0")
    assert r.exit_code == 0, r.output
    got = read_image(sheet)
    # Rows 0, -15, +15; the whole 50 x 70 image fits the 100 px crop and is magnified 3x.
    assert got.shape[:2] == (3 * (3 * 50 + 26), 2 * (3 * 70 + 4))


def test_synth_bad_options_name_the_option(tmp_path):
    for args, option in (
        (("--angles", "0,abc"), "--angles"),
        (("--radii", "x"), "--radii"),
        (("--length", "10"), "--length"),
        (("--density", "drizzle"), "--density"),
        (("--review", "accept"), "--review"),
    ):
        r = _run(*args, "-o", tmp_path / "o")
        assert r.exit_code == 2, (args, r.output)
        assert option in r.output, (option, r.output)
