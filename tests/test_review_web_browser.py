"""The review page in a real browser: headless Debian chromium driven by Playwright against
the real server (``rainset build-gt --review web``, ``rainset review``) on 127.0.0.1.

Chromium: ``$RAINSET_CHROMIUM``, else ``chromium`` on PATH (Debian's package; ``.ci/run``
installs it). Missing, these tests skip on a workstation and fail in CI (``CI`` set): the
browser tests must run there.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from conftest import rain_frames, textured_background  # noqa: E402

CHROMIUM = os.environ.get("RAINSET_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"CI needs chromium for the browser tests (looked for {CHROMIUM}); .ci/run installs it",
                    pytrace=False)
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

H, W = 24, 32  # the clip's frame size


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--force-color-profile=srgb"])
        yield b
        b.close()


def _decode(png: bytes) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _start(args, cwd):
    """A rainset command that serves the page; returns (process, url)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rainset_cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"review page: (http://127\.0\.0\.1:\d+/\?token=\S+)", line)
        if m:
            lines.append(proc.stdout.readline())  # the ssh line
            return proc, m.group(1), lines
    proc.kill()
    raise AssertionError("no URL printed:\n" + "".join(lines))


def _finish(proc, lines, timeout=60):
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, "".join(lines) + out


def _ready(page, n=None):
    """Wait until the page shows a candidate (of N = n) with its images loaded and drawn."""
    cond = "window.rainset && window.rainset.state.selected && window.rainset.ready()"
    if n is not None:
        cond += f" && window.rainset.state.board.items.find(i => i.id === window.rainset.state.selected).n === {n}"
    page.wait_for_function(cond, timeout=30000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _pixel(page, view: int, x: int, y: int) -> np.ndarray:
    shot = _decode(page.locator(f".view[data-view='{view}'] canvas").screenshot())
    return shot[y, x].astype(int)


@pytest.fixture
def clip(tmp_path):
    from rainset.video import write_video

    path = tmp_path / "clip.mp4"
    write_video(path, rain_frames(textured_background(H, W, 3), 24, seed=3, streaks=4), fps=10, crf=8)
    return path


@pytest.mark.slow
def test_build_gt_judged_in_the_browser(browser, clip, tmp_path):
    out = tmp_path / "OUT"
    proc, url, lines = _start(["build-gt", str(clip), "-o", str(out), "--review", "web", "--density", "sparse",
                               "--frames", "6", "--max-frames", "16"], tmp_path)
    try:
        port = int(re.search(r":(\d+)/", url).group(1))
        assert any(f"ssh -N -L {port}:127.0.0.1:{port}" in ln for ln in lines)
        context = browser.new_context(viewport={"width": 1200, "height": 700})
        page = context.new_page()
        # A bad token: 403, for the page and for everything behind it.
        bad = url.split("?")[0] + "?token=nope"
        assert page.goto(bad).status == 403
        assert page.goto(url.split("?")[0]).status == 403
        served = {}
        page.on("response", lambda r: "/api/image/" in r.url and r.status == 200
                and served.setdefault(r.url.split("?")[0].split("/api/image/")[1], r.body()))
        assert page.goto(url).status == 200
        _ready(page, 6)
        # The residual-rain score arrives for every candidate (computed after it is shown).
        page.wait_for_function("window.rainset.state.board.items[0].figures.score !== null")
        assert "predicted error" in page.locator("#figures").text_content()
        (item,) = page.evaluate("window.rainset.state.board.items")
        assert item["figures"]["p_hat"] is not None
        clean = _decode(served[f"{item['id']}/clean"])
        rainy = _decode(served[f"{item['id']}/rainy/0"])
        assert clean.shape == (H, W, 3) and rainy.shape == (H, W, 3)
        assert page.evaluate("document.querySelector('#counts').textContent").startswith("decided 0 · pending 1")

        # 1:1 with the image's corner at (10, 40) of the view (clear of the label), wipe fully
        # left (the right view shows the clean image): screen pixel (10 + x, 40 + y) of the
        # view is image pixel (x, y).
        page.keyboard.press("1")
        assert page.evaluate("window.rainset.view().scale") == 1
        page.evaluate("window.rainset.setView(1, 10, 40); window.rainset.setWipe(0)")
        shot = _decode(page.locator(".view[data-view='1'] canvas").screenshot())
        for y, x in ((0, 0), (5, 7), (H - 1, W - 1), (11, 20)):
            assert np.abs(shot[40 + y, 10 + x].astype(int) - clean[y, x].astype(int)).max() <= 1, (y, x)
        assert np.abs(shot[40:40 + H, 10:10 + W].astype(int) - clean.astype(int)).max() <= 1

        # The wipe: at 4x, a pixel where the rainy frame and the clean image differ shows the
        # rainy frame left of the wipe line and the clean image once the line moves past it.
        diff = np.abs(rainy.astype(int) - clean.astype(int)).max(axis=2)
        y, x = np.unravel_index(int(np.argmax(diff)), diff.shape)
        assert diff[y, x] > 30
        width = page.evaluate("document.querySelector(\".view[data-view='1']\").getBoundingClientRect().width")
        sx, sy = int(width * 0.3), 100
        page.evaluate(f"window.rainset.setView(4, {sx - 4 * x - 2}, {sy - 4 * y - 2})")
        page.evaluate("window.rainset.setWipe(0.5)")
        assert np.abs(_pixel(page, 1, sx, sy) - rainy[y, x]).max() <= 1
        page.keyboard.press("[")
        for _ in range(4):
            page.keyboard.press("[")  # 0.5 - 5 x 0.05 = 0.25 < 0.3: the line has passed the pixel
        assert page.evaluate("window.rainset.view().wipe") == pytest.approx(0.25)
        assert np.abs(_pixel(page, 1, sx, sy) - clean[y, x]).max() <= 1
        # The left view shows the rainy frame at the same zoom and place (synchronised).
        assert np.abs(_pixel(page, 0, sx, sy) - rainy[y, x]).max() <= 1
        # The amplified difference toggles on the left view.
        page.keyboard.press("d")
        page.evaluate("() => new Promise(r => requestAnimationFrame(r))")
        assert np.abs(_pixel(page, 0, sx, sy) - min(255, 4 * diff[y, x])).max() <= 1
        page.keyboard.press("d")
        # Frames step with the arrows.
        page.keyboard.press("ArrowRight")
        assert page.evaluate("window.rainset.view().frame") == 1

        page.keyboard.press("m")  # more: N = 6 + the sparse step of 10
        _ready(page, 16)
        # Reload: the state is the server's (the first candidate decided "more", the new one pending).
        page.reload()
        _ready(page, 16)
        items = page.evaluate("window.rainset.state.board.items")
        assert [(i["n"], i["status"]) for i in items] == [(6, "more"), (16, "pending")]
        assert page.evaluate("window.rainset.state.board.items[1].prev") == items[0]["id"]
        page.keyboard.press("c")  # compare with N = 6 on the left view
        assert "N=6" in page.locator(".view[data-view='0'] .label").text_content()
        # A second tab deciding the same candidate: the first decision wins, the second sees it.
        other = context.new_page()
        other.goto(url)
        _ready(other, 16)
        page.keyboard.press("a")
        other.keyboard.press("r")
        other.keyboard.type("second tab")
        other.keyboard.press("Enter")
        other.wait_for_function("document.querySelector('#message').textContent.includes('not changed')")
        code, output = _finish(proc, lines)
        assert code == 0, output
        context.close()
    finally:
        if proc.poll() is None:
            proc.kill()
    decisions = json.loads((out / "review.json").read_text())["decisions"]
    assert {k: (d["action"], d["by"]) for k, d in decisions.items()} == {
        "clip/w00/n6": ("more", "web"), "clip/w00/n16": ("accept", "web")}
    # The score is the page's: the dataset is what a replay of review.json writes.
    assert all(d["score"] is None for d in decisions.values())
    from rainset.dataset import check

    assert check(out) == []


def test_rainset_review_serves_the_datasets_bytes_and_records_a_change(browser, clip, tmp_path):
    from click.testing import CliRunner

    from rainset_cli.main import cli

    out = tmp_path / "OUT"
    base = ["build-gt", str(clip), "--density", "sparse", "--frames", "6", "--max-frames", "16"]
    r = CliRunner().invoke(cli, [*base, "--review", "accept", "-o", str(out)])
    assert r.exit_code == 0, r.output
    proc, url, lines = _start(["review", str(out)], tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1000, "height": 600})
        served = {}
        page.on("response", lambda r: "/api/image/" in r.url and r.status == 200
                and served.setdefault(r.url.split("?")[0].split("/api/image/")[1], r.body()))
        page.goto(url)
        _ready(page, 6)
        (item,) = page.evaluate("window.rainset.state.board.items")
        assert item["status"] == "accept" and item["frames"] == 6
        # The bytes shown are the dataset's files.
        assert hashlib.sha256(served[f"{item['id']}/clean"]).digest() == \
            hashlib.sha256((out / "clean/clip/w00.png").read_bytes()).digest()
        assert served[f"{item['id']}/rainy/0"] == (out / "rain/clip/w00/f000000.png").read_bytes()
        page.keyboard.press("r")
        page.keyboard.type("streaks on the wall")
        page.keyboard.press("Enter")
        page.wait_for_function("window.rainset.state.board.items[0].status === 'reject'")
        page.reload()
        _ready(page, 6)
        assert page.evaluate("window.rainset.state.board.items[0].reason") == "streaks on the wall"
        page.click("#finish")
        code, output = _finish(proc, lines)
        assert code == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
    d = json.loads((out / "review.json").read_text())["decisions"]
    assert {k: (v["action"], v["reason"], v["by"]) for k, v in d.items()} == {
        "clip/w00/n6": ("reject", "streaks on the wall", "review")}


@pytest.mark.slow
def test_synth_tier_choice_on_the_page_then_revisited(browser, tmp_path):
    from click.testing import CliRunner

    from rainset.dataset import open_dataset
    from rainset.image import write_image
    from rainset_cli.main import cli

    photos = tmp_path / "photos"
    write_image(photos / "a.png", textured_background(40, 48, 5))
    write_image(photos / "b.png", textured_background(40, 48, 6))
    out = tmp_path / "OUT"
    common = ["--tier-choice", "review", "--tiers", "store", "--max-size", "64"]
    proc, url, lines = _start(["synth", str(photos), "-o", str(out), *common, "--review", "web"], tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 500})
        page.goto(url)
        _ready(page)
        assert page.locator(".view").count() == 5  # the clean photo and its four tiers
        labels = [page.locator(f".view[data-view='{k}'] .label").text_content() for k in range(5)]
        assert labels == ["clean", "tier 3x3", "tier 5x5", "tier 7x7", "tier 9x9"]
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")  # 7x7
        assert "chosen" in page.locator(".view[data-view='3']").get_attribute("class")
        page.keyboard.press("a")
        page.wait_for_function("window.rainset.state.board.items.length === 2 && window.rainset.ready()")
        page.keyboard.press("r")
        page.keyboard.type("too dark")
        page.keyboard.press("Enter")
        code, output = _finish(proc, lines)
        assert code == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
    (rec,) = open_dataset(out).samples()
    assert rec["scene"] == "a.png" and rec["tier"] == "7x7"
    d = json.loads((out / "review.json").read_text())["decisions"]
    assert {k: v["action"] for k, v in d.items()} == {
        "a.png/w00/n3": "more", "a.png/w00/n5": "more", "a.png/w00/n7": "accept", "b.png/w00/n3": "reject"}

    # rainset review: photo a's tier becomes 5x5; a replay picks it.
    proc, url, lines = _start(["review", str(out)], tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 500})
        page.goto(url)
        _ready(page)
        assert page.evaluate("window.rainset.state.board.items[0].figures.tier") == "7x7"
        page.keyboard.press("ArrowRight")  # 5x5 (the second tier)
        page.keyboard.press("a")
        page.wait_for_function("window.rainset.state.board.items[0].figures.tier === '5x5'")
        page.click("#finish")
        code, output = _finish(proc, lines)
        assert code == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
    d = json.loads((out / "review.json").read_text())["decisions"]
    assert {k: v["action"] for k, v in d.items()} == {
        "a.png/w00/n3": "more", "a.png/w00/n5": "accept", "b.png/w00/n3": "reject"}
    r = CliRunner().invoke(cli, ["synth", str(photos), "-o", str(tmp_path / "OUT2"), *common, "--review", "file",
                                 "--decisions", str(out / "review.json")])
    assert r.exit_code == 0, r.output
    (rec,) = open_dataset(tmp_path / "OUT2").samples()
    assert rec["tier"] == "5x5"
