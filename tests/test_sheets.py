"""rainset.sheets: the pieces every preview, contact sheet and example grid is built from; and
the rules that keep them (and the 16-to-8-bit conversion) in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from rainset import sheets

ROOT = Path(__file__).resolve().parents[1]


def _tile(h, w, value=100):
    return np.full((h, w, 3), value, np.uint8)


def test_fit_width_shrinks_keeping_aspect_and_leaves_small_tiles():
    img = _tile(300, 1000)
    assert sheets.fit_width(img, 500).shape == (150, 500, 3)
    small = _tile(30, 40)
    out = sheets.fit_width(small, 100)
    assert out.shape == small.shape and out is not small
    assert sheets.fit_width(small, 100, upscale=True).shape == (75, 100, 3)
    assert sheets.fit_width(_tile(1, 1000), 10).shape == (1, 10, 3)  # at least one row
    with pytest.raises(ValueError, match="width"):
        sheets.fit_width(img, 0)


def test_magnify_repeats_pixels():
    img = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    big = sheets.magnify(img, 3)
    assert big.shape == (6, 6, 3)
    np.testing.assert_array_equal(big[::3, ::3], img)
    np.testing.assert_array_equal(big[2, 2], img[0, 0])
    assert sheets.zoom_for(300, 50) == 4 and sheets.zoom_for(100, 50) == 2
    assert sheets.zoom_for(10, 50) == 1


def test_boxes_centre_and_busiest():
    assert sheets.centre_box((100, 200, 3)) == (37, 75, 25, 50)
    values = np.zeros((80, 120), np.float32)
    values[60:70, 10:20] = 1
    y0, x0, h, w = sheets.busiest_box(values)
    assert (h, w) == (20, 30)
    assert y0 <= 60 and y0 + h >= 70 and x0 <= 10 and x0 + w >= 20


def test_label_writes_in_the_corner_of_a_copy():
    img = _tile(60, 200, 0)
    out = sheets.label(img, "hello", scale=0.5)
    assert img.max() == 0  # the input is untouched
    ys, xs = np.nonzero(out.max(axis=2))
    assert ys.max() < 25 and xs.min() >= 2 and xs.max() < 100
    boxed = sheets.label(_tile(60, 200, 200), "hi", box=sheets.BLACK)
    assert (boxed[:4, :4] == 0).all() and (boxed[40:] == 200).all()


def test_layout_pads_and_gutters():
    a, b = _tile(10, 20, 50), _tile(6, 30, 60)
    row = sheets.hstack([a, b], gutter=4, fill=255)
    assert row.shape == (10, 54, 3)
    assert (row[:, 20:24] == 255).all() and (row[6:, 24:] == 255).all()
    col = sheets.vstack([a, b], width=40)
    assert col.shape == (16, 40, 3) and (col[:10, 20:] == 0).all()
    with pytest.raises(ValueError, match="wider"):
        sheets.vstack([a], width=10)
    g = sheets.grid([[a, a], [b]], gutter=2, fill=255, title="t")
    assert g.shape == (36 + 10 + 2 + 6, 42, 3) and g.flags.c_contiguous
    cap = sheets.captioned(a, "x")
    assert cap.shape == (26 + 10, 24, 3)
    np.testing.assert_array_equal(cap[26:, 2:22], a)
    assert sheets.band("t", 50).shape == (24, 50, 3)


def test_the_builders_use_the_sheets_pieces():
    """The five sheet builders give the layout the pieces describe."""
    from rainset.review import preview_sheet
    from rainset.synth import tier_sheet
    from rainset.train.report import example_grid

    clean = _tile(64, 96, 100)
    rainy = clean.copy()
    rainy[40:60, 70:72] = 200
    sheet = preview_sheet(rainy, clean, title="t")
    top = sheet[36 : 36 + 64]
    assert top.shape[1] == 3 * 96
    # the difference panel is bright where the streak is; the zoomed crops below show it
    assert top[40:60, 2 * 96 + 70 : 2 * 96 + 72, 0].min() == 255
    assert tier_sheet(clean, rainy, 3, width=96).shape == (32 + 16 * 2, 96, 3)
    grid = example_grid([(clean, rainy, clean)] * 2, width=48)
    assert grid.shape == (2 * 32 + 4, 3 * 48 + 8, 3)
    assert (grid[32:36] == 255).all()


# ----------------------------------------------------------------------------- one place


def _library_files():
    return sorted((ROOT / "rainset").rglob("*.py")) + sorted((ROOT / "rainset_cli").rglob("*.py"))


def _calls(path: Path, names: set[str]):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in names:
                yield node.lineno


def test_only_sheets_draws_text():
    """No library module other than rainset.sheets writes text on an image."""
    found = [
        f"{p.relative_to(ROOT)}:{line}"
        for p in _library_files()
        if p != ROOT / "rainset" / "sheets.py"
        for line in _calls(p, {"putText", "getTextSize"})
    ]
    assert found == []


def _scales_16_to_8(path: Path):
    """Lines that divide by 257 or by 65535 (a 16-to-8-bit scaling written out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, (ast.Div, ast.FloorDiv))
            and isinstance(node.right, ast.Constant)
            and node.right.value in (257, 257.0, 65535, 65535.0)
        ):
            yield node.lineno


def test_one_16_to_8_bit_conversion():
    found = [
        f"{p.relative_to(ROOT)}:{line}"
        for p in _library_files()
        if p != ROOT / "rainset" / "image.py"
        for line in _scales_16_to_8(p)
    ]
    assert found == []


def _hand_parsed_jsonl(path: Path):
    """Loops (or comprehensions) that ``json.loads`` each line of a text or file: a JSONL
    reader written by hand."""
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def names(target):
        return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}

    def loads_of(node, loop_vars):
        for n in ast.walk(node):
            if (
                isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                and n.func.attr == "loads" and isinstance(n.func.value, ast.Name)
                and n.func.value.id == "json" and n.args
                and names(n.args[0]) & loop_vars  # json.loads(line), json.loads(line.strip())
            ):
                return True
        return False

    def over_lines(it):
        return isinstance(it, ast.Name) or any(  # ``for line in f`` or ``text.splitlines()``
            isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr in ("splitlines", "readlines")
            for n in ast.walk(it)
        )

    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.AsyncFor)) and over_lines(node.iter):
            if any(loads_of(b, names(node.target)) for b in node.body):
                yield node.lineno
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            loop_vars = set().union(*(names(g.target) for g in node.generators))
            if any(over_lines(g.iter) for g in node.generators) and loads_of(node, loop_vars):
                yield node.lineno


def test_one_jsonl_reader():
    """Only rainset.dataset.jsonl parses JSONL; everything else asks it."""
    own = ROOT / "rainset" / "dataset" / "jsonl.py"
    found = [
        f"{p.relative_to(ROOT)}:{line}"
        for p in _library_files()
        if p != own
        for line in _hand_parsed_jsonl(p)
    ]
    assert found == []


def test_the_jsonl_check_sees_a_hand_written_reader(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("import json\ndef f(t):\n    return [json.loads(x) for x in t.splitlines()]\n")
    assert list(_hand_parsed_jsonl(p)) == [3]
    p.write_text("import json\ndef f(f):\n    for line in f:\n        rec = json.loads(line)\n")
    assert list(_hand_parsed_jsonl(p)) == [3]
