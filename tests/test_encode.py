"""The write path (issue 14): the bounded encode pool, in-order release, the PNG settings."""

from __future__ import annotations

import json
import struct
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from rainset._encode import EncodePool, InOrder
from rainset.dataset import DatasetWriter
from rainset.image import PNG_SETTINGS, png_params, write_image


def png_row_filters(path: Path) -> set[int]:
    """The filter type bytes of a (non-interlaced) PNG's rows: 0 none, 1 sub, 2 up, ..."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat, width, height, depth, colour = 8, b"", 0, 0, 0, 0
    while i < len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        body = data[i + 8 : i + 8 + size]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert interlace == 0
        elif kind == b"IDAT":
            idat += body
        i += 12 + size
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    stride = 1 + width * channels * depth // 8
    raw = zlib.decompress(idat)
    assert len(raw) == stride * height
    return {raw[r * stride] for r in range(height)}


def decode(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------- PNG settings


@pytest.mark.parametrize(
    "image, kind, filters",
    [
        (np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8), "color", {2}),
        (np.random.default_rng(1).integers(0, 65536, (20, 30, 3), dtype=np.uint16), "color", {2}),
        (np.random.default_rng(2).integers(0, 65536, (20, 30), dtype=np.uint16), "color", {2}),
        ((np.random.default_rng(3).random((20, 30)) > 0.7).astype(np.uint8) * 255, "grey", {0}),
    ],
)
def test_pngs_are_written_with_the_measured_settings_and_unchanged_pixels(tmp_path, image, kind, filters):
    write_image(tmp_path / "x.png", image)
    assert np.array_equal(decode(tmp_path / "x.png"), image)
    assert png_row_filters(tmp_path / "x.png") == filters  # Up rows / no filter, as PNG_SETTINGS says
    assert PNG_SETTINGS[kind]["filter"] == {2: "up", 0: "none"}[filters.pop()]
    assert png_params(image)[:2] == [cv2.IMWRITE_PNG_COMPRESSION, PNG_SETTINGS[kind]["level"]]


def test_the_legacy_level_is_still_available(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", img, png_compression=3)
    assert np.array_equal(decode(tmp_path / "a.png"), img)


def test_rainset_json_records_the_png_settings(tmp_path):
    with DatasetWriter(tmp_path / "ds", kind="paired", params={}) as w:
        img = np.zeros((8, 8, 3), np.uint8)
        w.add({"id": "a", "scene": "s", "rainy": w.write_image("r/a", img), "clean": w.write_image("c/a", img)})
    meta = json.loads((tmp_path / "ds" / "rainset.json").read_text())
    assert meta["png"] == PNG_SETTINGS


# ----------------------------------------------------------------------------- the pool


def test_submit_blocks_while_max_pending_writes_are_outstanding():
    gate = threading.Event()
    with EncodePool(threads=2, max_pending=3) as pool:
        futures = [pool.submit(gate.wait) for _ in range(3)]
        assert pool.outstanding == 3
        done = threading.Event()

        def fourth():
            futures.append(pool.submit(lambda: None))
            done.set()

        t = threading.Thread(target=fourth)
        t.start()
        assert not done.wait(0.3)  # back-pressure: the fourth waits for a slot
        gate.set()
        t.join(5)
        assert done.is_set()
    assert all(f.done() for f in futures)
    assert pool.peak == 3 and pool.outstanding == 0


def test_outstanding_writes_never_exceed_the_bound():
    seen = []
    lock = threading.Lock()
    with EncodePool(threads=3, max_pending=4) as pool:

        def job():
            with lock:
                seen.append(pool.outstanding)
            threading.Event().wait(0.002)

        for _ in range(40):
            pool.submit(job)
    assert len(seen) == 40 and max(seen) <= 4 and pool.peak <= 4


def test_a_failed_write_raises_from_the_next_submit():
    with EncodePool(threads=1) as pool:
        fut = pool.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            fut.result()
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: None)
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(lambda: None)


def test_leaving_on_an_exception_drops_the_writes_not_started():
    gate = threading.Event()
    ran = []
    with pytest.raises(KeyboardInterrupt):
        with EncodePool(threads=1, max_pending=10) as pool:
            first = pool.submit(gate.wait)
            later = [pool.submit(ran.append, i) for i in range(5)]
            threading.Timer(0.2, gate.set).start()
            raise KeyboardInterrupt
    assert first.done() and all(f.cancelled() for f in later) and ran == []
    assert pool.outstanding == 0


def test_in_order_releases_items_in_order_once_their_writes_are_done():
    gate = threading.Event()
    with EncodePool(threads=2) as pool:
        q: InOrder[str] = InOrder()
        slow = pool.submit(gate.wait)
        q.put("a", [slow])
        q.put("b", [pool.submit(lambda: None)])
        q.put("c")
        assert list(q.ready()) == []  # "b" is written, but "a" is not yet
        gate.set()
        assert list(q.ready(wait=True)) == ["a", "b", "c"]


def test_in_order_keeps_back_an_item_whose_write_failed_and_every_later_one():
    with EncodePool(threads=1) as pool:
        q: InOrder[str] = InOrder()
        q.put("a", [pool.submit(lambda: None)])
        q.put("b", [pool.submit(lambda: 1 / 0)])
        q.put("c")
        out = []
        with pytest.raises(ZeroDivisionError):
            for item in q.ready(wait=True):
                out.append(item)
        assert out == ["a"] and len(q) == 2


# ----------------------------------------------------------------------------- with the writer


def test_a_failing_pooled_write_raises_and_leaves_no_manifest_line(tmp_path):
    out = tmp_path / "ds"
    (out / "rainy" / "b.png").mkdir(parents=True)  # the write of rainy/b.png cannot land
    img = np.full((8, 8, 3), 7, np.uint8)
    with pytest.raises(OSError):
        with EncodePool(threads=2) as enc, DatasetWriter(out, kind="paired", params={}, encoder=enc) as w:
            for sid in ("a", "b", "c"):
                rec = {"id": sid, "scene": "s", "rainy": w.write_image(f"rainy/{sid}", img),
                       "clean": w.write_image(f"clean/{sid}", img)}
                w.add(rec)
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a"]
    assert json.loads((out / "rainset.json").read_text())["complete"] is False
    assert np.array_equal(decode(out / "rainy" / "a.png"), img)
