"""The dataset format has one owner: ``rainset/dataset/`` (issue 12).

No module outside the package names the format's files (``rainset.json``, ``manifest.jsonl``,
``pairs.jsonl``, ``review.json``), builds the paths of rainset's own folders (``rain/``,
``clean/``, ``mask/``, ``frames/`` ...) or picks an image extension for a file it writes; they
ask :mod:`rainset.dataset.layout` and write through the writer. The exchange module's foreign
layouts (BasicSR, Hugging Face, WebDataset, SPA, GT-Rain folders) are exempt: those names are
the foreign formats'.

The scan reads string literals with :mod:`ast` (comments never match): docstrings and click
``help=`` texts are prose and are skipped; everything else counts, messages included (they
say ``{layout.META}``, so a renamed file is renamed in every message too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OWNER = REPO / "rainset" / "dataset"
#: Modules writing or reading foreign layouts (their own file and folder names).
FOREIGN = {
    "rainset/exchange/basicsr.py",
    "rainset/exchange/hf.py",
    "rainset/exchange/webdataset.py",
    "rainset/exchange/spa.py",
    "rainset/exchange/gtrain.py",
}
FILES = ("rainset.json", "manifest.jsonl", "pairs.jsonl", "review.json")
FOLDERS = (
    "rain", "rainy", "clean", "mask", "masks", "frames", "rain_map", "residual", "tiers",
    "semantic", "previews", "scenes", "stats", "sheets",
)  # fmt: skip
SUFFIXES = (".png", ".jpg", ".jpeg")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the Constant nodes that are docstrings (module, class, function)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _help_texts(tree: ast.AST) -> set[int]:
    """ids of the string nodes given as ``help=`` (click options: prose about the command)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in ("help", "epilog", "short_help"):
            out.update(id(n) for n in ast.walk(node.value))
    return out


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def violations(source: str) -> list[str]:
    """What a module's source does that only the format package may do, one line each."""
    tree = ast.parse(source)
    skip = _docstrings(tree) | _help_texts(tree)
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    found = []

    def say(node: ast.AST, what: str) -> None:
        found.append(f"line {node.lineno}: {what}")

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if _is_str(node):
            text = node.value
            for name in FILES:
                if name in text:
                    say(node, f"names the format's file {name!r} in {text!r}")
            for folder in FOLDERS:
                if text.startswith(f"{folder}/") and id(node) not in parts:  # f-strings: below
                    say(node, f"builds a path in the format's folder {folder!r}: {text!r}")
        elif isinstance(node, ast.JoinedStr) and node.values:
            first, last = node.values[0], node.values[-1]
            if _is_str(first) and any(first.value.startswith(f"{f}/") for f in FOLDERS):
                say(node, f"builds a path in a format folder with an f-string {first.value!r}...")
            if (  # f"{stem}.png": an extension put on a computed stem
                isinstance(first, ast.FormattedValue)
                and _is_str(last)
                and last.value.lower().endswith(SUFFIXES)
            ):
                say(node, f"appends the image extension {last.value!r} to a computed stem")
        elif isinstance(node, ast.IfExp):
            if _is_str(node.body) and _is_str(node.orelse) and {
                node.body.value.lower(), node.orelse.value.lower()
            } <= set(SUFFIXES):
                say(node, "chooses between image extensions")
        elif isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Add) and _is_str(node.right) and node.right.value.lower() in SUFFIXES:
                say(node, f"appends the image extension {node.right.value!r}")
            if isinstance(node.op, ast.Div) and _is_str(node.right) and node.right.value in (*FOLDERS, "review"):
                say(node, f"joins the format's folder {node.right.value!r} onto a path")
    return found


def _modules() -> list[Path]:
    out = []
    for top in ("rainset", "rainset_cli"):
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if OWNER in path.parents or rel in FOREIGN:
                continue
            out.append(path)
    return out


def test_no_module_outside_the_format_package_knows_the_layout():
    bad = {}
    for path in _modules():
        found = violations(path.read_text(encoding="utf-8"))
        if found:
            bad[path.relative_to(REPO).as_posix()] = found
    assert not bad, "ask rainset.dataset.layout instead:\n" + "\n".join(
        f"{mod}: {line}" for mod, lines in bad.items() for line in lines
    )


@pytest.mark.parametrize(
    "code",
    [
        'rel = f"rain/{stem}" + (".png" if ext == ".png" else ".jpg")',  # old buildgt
        'rec = {"mask": f"mask/{stem}.png"}',
        'p = root / "rainset.json"',
        'log = ReviewLog(out / "review.json", params=p)',
        'raise X(f"{d} is not a rainset dataset (no rainset.json)")',
        'one = next((dataset / "clean").rglob("*.png"))',
        'rel = stem + (".png" if png else ".jpg")',  # old synth._save
        'sheet = root / "review" / f"{photo}_{k}.png"',
        'stats = f"stats/{scene}.csv"',
        'x = "manifest.jsonl"',
    ],
)
def test_the_scan_catches_what_the_old_tree_did(code):
    assert violations(code)


@pytest.mark.parametrize(
    "code",
    [
        '"""Writes rainset.json and clean/<scene>.png."""',  # a docstring
        'def f():\n    """Reads manifest.jsonl."""',
        'opt = option("--x", help="the review.json of an earlier run")',
        'x = IMAGE_SUFFIXES + (".webp",)',
        'if path.suffix.lower() in (".png", ".jpg"): pass',
        'write_image(run_dir / "examples.png", grid)',  # a fixed name, not a chosen extension
        'rel = f"examples-{k}.png"',  # a run folder's file: a fixed name with a number
        'rel = layout.image_relpath(stem, fmt)',
        'name = f"{mode}.clean"',
        'if choice == "review": pass',
    ],
)
def test_the_scan_leaves_alone_what_is_not_layout(code):
    assert violations(code) == []


def test_the_old_tree_fails(tmp_path):
    """The modules of the tree before the package (git bd18de5) break the rule."""
    import subprocess

    def old(path: str) -> str:
        res = subprocess.run(
            ["git", "-C", str(REPO), "show", f"bd18de5:{path}"], capture_output=True, text=True
        )
        if res.returncode != 0:
            pytest.skip("no git history here")
        return res.stdout

    for path in ("rainset/buildgt.py", "rainset/synth.py", "rainset_cli/inspect_cmds.py"):
        assert violations(old(path)), path
