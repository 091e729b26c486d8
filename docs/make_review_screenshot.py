"""Make docs/review.png: the review page of `rainset build-gt --review web`, in headless chromium.

Run from the repository root (needs the dev extras and Debian's chromium)::

    python docs/make_review_screenshot.py            # writes docs/review.png
    python docs/make_review_screenshot.py OUT.png    # elsewhere

It builds the bundled example clip (a scikit-image photo with rainset's own rain) in a temporary
folder, serves the page, asks for more frames once (so the compare-N view has two candidates),
and photographs the page with the wipe at 40 % and the view zoomed 2x.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = os.environ.get("RAINSET_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def main(dest: Path) -> None:
    import cv2
    import numpy as np
    from playwright.sync_api import sync_playwright

    from rainset.demo import make_example_clip

    with tempfile.TemporaryDirectory() as tmp:
        clip, _, _ = make_example_clip(Path(tmp) / "street.mp4", n_frames=30)
        proc = subprocess.Popen(
            [sys.executable, "-m", "rainset_cli", "build-gt", str(clip), "-o", str(Path(tmp) / "OUT"),
             "--review", "web", "--density", "sparse", "--frames", "10", "--max-frames", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        url = None
        for line in proc.stdout:
            m = re.search(r"review page: (\S+)", line)
            if m:
                url = m.group(1)
                break
        if url is None:
            raise SystemExit("the build printed no URL")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--force-color-profile=srgb"])
                page = browser.new_page(viewport={"width": 1100, "height": 540})
                page.goto(url)
                ready = ("window.rainset && window.rainset.state.selected && window.rainset.ready() && "
                         "window.rainset.state.board.items.find(i => i.id === window.rainset.state.selected)")
                page.wait_for_function(ready + ".n === 10")
                page.keyboard.press("m")
                page.wait_for_function(ready + ".n === 20")
                page.wait_for_function(ready + ".figures.score !== null")
                page.evaluate("() => { const v = window.rainset.view(); window.rainset.setWipe(0.4); }")
                box = page.locator(".view[data-view='1']").bounding_box()
                page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5)
                for _ in range(4):
                    page.mouse.wheel(0, -120)
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                png = page.screenshot()
                page.keyboard.press("a")
                browser.close()
        finally:
            proc.wait(timeout=60)
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dest), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{dest}: {img.shape[1]}x{img.shape[0]}, {dest.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "review.png")
