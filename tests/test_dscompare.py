"""tests/dscompare.py: the "same dataset" comparison other tests rely on."""

import json
import shutil

import pytest
from dscompare import assert_same_dataset, dataset_differences


def _make(root, *, created="2026-01-01T00:00:00+00:00", tool="rainset synth", time="t1"):
    (root / "rainy").mkdir(parents=True)
    (root / "rainy" / "a.png").write_bytes(b"\x89PNG-a")
    (root / "clean.jpg").write_bytes(b"jpg-bytes")
    meta = {"format_version": 1, "kind": "paired", "created": created, "tool": tool,
            "sources": [{"path": "x.mp4", "sha256": "00", "note": ""}]}
    (root / "rainset.json").write_text(json.dumps(meta))
    (root / "manifest.jsonl").write_text('{"id": "a"}\n{"id": "b"}\n')
    review = {"version": 1, "params": {}, "decisions": {"s/w00/n8": {"action": "accept", "time": time}}}
    (root / "review.json").write_text(json.dumps(review))
    return root


def test_same_except_times_and_tool(tmp_path):
    a = _make(tmp_path / "a")
    b = _make(tmp_path / "b", created="2027-05-05T00:00:00+00:00", tool="rainset import", time="t2")
    assert_same_dataset(a, b)


@pytest.mark.parametrize("change", ["image", "missing_image", "line", "sources", "decision", "temp"])
def test_each_difference_is_found(tmp_path, change):
    a = _make(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    if change == "image":
        (b / "rainy" / "a.png").write_bytes(b"\x89PNG-b")
    elif change == "missing_image":
        (b / "clean.jpg").unlink()
    elif change == "line":
        (b / "manifest.jsonl").write_text('{"id": "a"}\n')
    elif change == "sources":
        meta = json.loads((b / "rainset.json").read_text())
        meta["sources"] = []
        (b / "rainset.json").write_text(json.dumps(meta))
    elif change == "decision":
        rev = json.loads((b / "review.json").read_text())
        rev["decisions"]["s/w00/n8"]["action"] = "reject"
        (b / "review.json").write_text(json.dumps(rev))
    elif change == "temp":
        (b / ".review.json.tmp-123").write_text("{}")
    assert dataset_differences(a, b)
    with pytest.raises(AssertionError):
        assert_same_dataset(b, a)
