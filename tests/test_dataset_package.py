"""The format package's own pieces: layout and extension rule, the worker handle, encoders,
the one JSONL reader (issue 12; the writer's hook for issue 14's encode pool)."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import Future

import numpy as np
import pytest

from rainset.dataset import (
    DatasetWriter,
    WriterHandle,
    check,
    is_dataset,
    iter_jsonl,
    layout,
    open_dataset,
    read_jsonl,
)
from rainset.errors import FormatError

RGB = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
IMAGES = {
    "rgb": RGB,
    "grey": RGB[..., 0],
    "mask": RGB[..., 0] > 20,
    "deep": RGB.astype(np.uint16) * 200,
}


@pytest.mark.parametrize("fmt", ["png", "jpg"])
@pytest.mark.parametrize("lossless", [False, True])
def test_layout_names_the_path_the_writer_and_its_handle_write(tmp_path, fmt, lossless):
    w = DatasetWriter(tmp_path / "ds", kind="paired", params={}, image_format=fmt)
    handle = pickle.loads(pickle.dumps(w.handle()))
    other = tmp_path / "ds2"
    twin = WriterHandle(str(other), handle.kind, handle.image_format, handle.jpeg_quality)
    with w:
        for name, img in IMAGES.items():
            stem = f"x/{name}"
            want = layout.image_relpath(stem, fmt, img, lossless=lossless)
            assert w.image_relpath(stem, img, lossless=lossless) == want
            assert w.write_image(stem, img, lossless=lossless) == want
            assert twin.write_image(stem, img, lossless=lossless) == want
            assert (w.root / want).read_bytes() == (other / want).read_bytes()
            jpeg = fmt == "jpg" and not lossless and name == "rgb"
            assert want.endswith(".jpg" if jpeg else ".png")


def test_a_stem_made_from_a_file_name_keeps_its_dots(tmp_path):
    h = WriterHandle(str(tmp_path), "paired", "jpg", 95)
    with pytest.raises(ValueError, match="no image extension"):
        h.write_image("clean/a.jpg", RGB)
    assert h.write_image("clean/a.jpg", RGB, check_suffix=False) == "clean/a.jpg.jpg"


def test_a_worker_writer_sends_what_the_owner_adds(tmp_path):
    src = tmp_path / "clip.bin"
    src.write_bytes(b"footage")
    out = tmp_path / "ds"
    with DatasetWriter(out, kind="paired", params={"n": 1}) as w:
        handle = pickle.loads(pickle.dumps(w.handle(known={"old"})))
        sent = []
        worker = handle.connect(lambda kind, payload: sent.append(pickle.dumps((kind, payload))))
        assert worker.has("old") and not worker.has("s/0")
        worker.add_source(src, note="own footage", scene="s")
        rec = {
            "id": "s/0",
            "scene": "s",
            "rainy": worker.write_image(layout.synth_rainy("s/0"), RGB),
            "clean": worker.write_image(layout.synth_clean("s"), RGB),
            "mask": worker.write_image(layout.synth_mask("s/0"), IMAGES["mask"]),
        }
        worker.add(rec)
        assert worker.has("s/0")
        for kind, payload in map(pickle.loads, sent):
            w.receive(kind, payload)
        w.receive("record", rec)  # a record sent twice is added once
    assert check(out) == []
    ds = open_dataset(out)
    assert [r["id"] for r in ds.samples()] == ["s/0"]
    assert ds.meta["sources"][0]["scene"] == "s"
    assert ds.load_mask(next(ds.samples())).sum() == IMAGES["mask"].sum()


class _Later(Future):
    """A write that runs only when someone waits for it: shows who waits."""

    def __init__(self, fn, args, kwargs):
        super().__init__()
        self._job = (fn, args, kwargs)

    def _run(self):
        if self._job is not None:
            fn, args, kwargs = self._job
            self._job = None
            try:
                self.set_result(fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - the future carries it
                self.set_exception(exc)

    def result(self, timeout=None):
        self._run()
        return super().result(timeout)

    def exception(self, timeout=None):
        self._run()
        return super().exception(timeout)


class LaterEncoder:
    def __init__(self, fail: bool = False):
        self.fail = fail
        self.submitted = 0

    def submit(self, fn, /, *args, **kwargs):
        self.submitted += 1
        if self.fail:
            def fn(*_a, **_k):
                raise OSError("disk full")
        return _Later(fn, args, kwargs)


def test_a_pooled_encoder_writes_images_before_the_record_that_names_them(tmp_path):
    enc = LaterEncoder()
    out = tmp_path / "ds"
    with DatasetWriter(out, kind="paired", params={}, encoder=enc) as w:
        rainy = w.write_image("rainy/s/0", RGB)
        clean = w.write_image("clean/s", RGB)
        extra = w.write_image("clean/unreferenced", RGB)
        assert not (out / rainy).exists()  # handed to the encoder, not yet written
        w.add({"id": "s/0", "scene": "s", "rainy": rainy, "clean": clean})
        assert (out / rainy).is_file() and (out / clean).is_file()
        assert not (out / extra).exists()
    assert (out / extra).is_file()  # close waits for every outstanding write
    assert enc.submitted == 3
    assert check(out) == []


def test_a_failed_pooled_write_leaves_the_dataset_unfinished(tmp_path):
    out = tmp_path / "ds"
    w = DatasetWriter(out, kind="paired", params={}, encoder=LaterEncoder(fail=True))
    w.write_image("clean/s", RGB)
    with pytest.raises(OSError, match="disk full"):
        w.close()
    assert json.loads((out / layout.META).read_text())["complete"] is False


def test_the_jsonl_reader_skips_a_torn_last_line_only(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert read_jsonl(p) == [{"a": 1}, {"a": 2}]
    assert [n for n, _ in iter_jsonl(p)] == [1, 2]
    p.write_text('{"a": 1}\nnot json\n{"a": 3}\n')
    with pytest.raises(FormatError, match="line 2"):
        read_jsonl(p)
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_is_dataset(tmp_path):
    assert not is_dataset(tmp_path)
    with DatasetWriter(tmp_path / "ds", kind="paired", params={}):
        pass
    assert is_dataset(tmp_path / "ds")
    assert layout.meta_path(tmp_path / "ds").is_file()
    assert not is_dataset(layout.meta_path(tmp_path / "ds"))  # the file, not the folder


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_a_thread_pool_encoder_writes_the_same_dataset(tmp_path, fmt):
    from concurrent.futures import ThreadPoolExecutor

    from dscompare import assert_same_dataset

    rng = np.random.default_rng(0)
    items = [(f"s{i % 2}/{i}", f"s{i % 2}", rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)) for i in range(6)]

    def write(out, encoder=None):
        with DatasetWriter(out, kind="paired", params={}, image_format=fmt, encoder=encoder) as w:
            for sid, scene, img in items:
                rec = {
                    "id": sid,
                    "scene": scene,
                    "rainy": w.write_image(layout.synth_rainy(sid), img),
                    "clean": w.write_image(layout.synth_clean(scene), img // 2),
                    "mask": w.write_image(layout.synth_mask(sid), img[..., 0] > 128),
                }
                w.add(rec, sync=False)

    write(tmp_path / "sync")
    with ThreadPoolExecutor(4) as pool:
        write(tmp_path / "pool", pool)
    assert check(tmp_path / "pool") == []
    assert_same_dataset(tmp_path / "pool", tmp_path / "sync")
