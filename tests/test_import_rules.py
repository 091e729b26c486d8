"""The import rules of docs/architecture.md, read from the source with ``ast``.

- the library (``rainset/``) never imports the command line (``rainset_cli``);
- the format (``rainset.dataset``, a module or a package) needs no torch and no trainer: neither
  its own imports nor anything they load at import time reach ``torch`` or ``rainset.train``;
- frames (``rainset.video``, ``rainset.image``) know nothing of the format: they and what they
  load never reach ``rainset.dataset``, ``rainset.exchange``, ``rainset.pipelines`` or a
  pipeline module;
- torch is imported only under ``rainset/train/`` and by the optional GPU path
  (``rainset/_gt_torch.py``, and inside the function of ``rainset/groundtruth.py`` that chooses
  the device).

Each rule is a function of a source tree, tested twice: on the real tree (it must hold) and on
a small tree written here that breaks it (the checker must notice), so a rule that silently
checks nothing cannot pass.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Modules that run a pipeline or speak the format: frames must not reach them.
FORMAT_AND_PIPELINES = (
    "rainset.dataset",
    "rainset.exchange",
    "rainset.pipelines",
    "rainset.buildgt",
    "rainset.pairs",
    "rainset.synth",
    "rainset.importer",
    "rainset.merge",
    "rainset.tasks",
    "rainset.executor",
    "rainset.train",
)
FRAMES = ("rainset.video", "rainset.image")
#: Where torch may be imported at module level, and where only inside a function.
TORCH_MODULES = ("rainset.train", "rainset._gt_torch")
TORCH_LAZY = ("rainset.groundtruth",)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported name, dotted and absolute
    lazy: bool  # inside a function (runs on call, not on import)
    line: int


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports_of(root: Path, path: Path) -> list[Import]:
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(Import(name, a.name, lazy, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.append(Import(name, target, lazy, child.lineno))
                # ``from rainset import sheets`` imports the submodule rainset.sheets.
                found.extend(Import(name, f"{target}.{a.name}", lazy, child.lineno)
                             for a in child.names if a.name != "*")
            visit(child, inner)

    visit(tree, False)
    return found


def read_tree(root: Path, packages=("rainset", "rainset_cli")) -> dict[str, list[Import]]:
    """Every module of ``packages`` under ``root`` and the imports it makes."""
    modules = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            modules[module_name(root, path)] = _imports_of(root, path)
    return modules


def _loaded(modules: dict[str, list[Import]], start: str) -> dict[str, Import | None]:
    """What importing ``start`` loads (module-level imports, followed through the tree),
    each with the import that first reached it."""
    seen: dict[str, Import | None] = {start: None}
    todo = [start]
    while todo:
        for imp in modules.get(todo.pop(), []):
            if imp.lazy or imp.target in seen:
                continue
            seen[imp.target] = imp
            if imp.target in modules:
                todo.append(imp.target)
    return seen


def _chain(modules, start: str, target: str) -> str:
    reached = _loaded(modules, start)
    steps = [target]
    while reached.get(steps[-1]) is not None:
        steps.append(reached[steps[-1]].module)
    return " <- ".join(steps)


# ----------------------------------------------------------------------------- the rules


def library_imports_cli(modules) -> list[str]:
    return [
        f"{i.module}:{i.line} imports {i.target}"
        for m, imps in modules.items() if _under(m, ("rainset",))
        for i in imps if _under(i.target, ("rainset_cli",))
    ]


def format_needs_torch(modules) -> list[str]:
    bad = []
    for m in modules:
        if not _under(m, ("rainset.dataset",)):
            continue
        for imp in modules[m]:  # its own imports, lazy ones too
            if _under(imp.target, ("torch", "rainset.train")):
                bad.append(f"{m}:{imp.line} imports {imp.target}")
        for target in _loaded(modules, m):  # what it loads, through other modules
            if target != m and _under(target, ("torch", "rainset.train")):
                bad.append(f"importing {m} loads {_chain(modules, m, target)}")
    return sorted(set(bad))


def frames_know_the_format(modules) -> list[str]:
    bad = []
    for m in FRAMES:
        if m not in modules:
            continue
        for imp in modules[m]:
            if _under(imp.target, FORMAT_AND_PIPELINES):
                bad.append(f"{m}:{imp.line} imports {imp.target}")
        for target in _loaded(modules, m):
            if target != m and _under(target, FORMAT_AND_PIPELINES):
                bad.append(f"importing {m} loads {_chain(modules, m, target)}")
    return sorted(set(bad))


def torch_outside_train(modules) -> list[str]:
    return [
        f"{i.module}:{i.line} imports {i.target}" + (" (in a function)" if i.lazy else "")
        for m, imps in modules.items()
        if _under(m, ("rainset",)) and not _under(m, TORCH_MODULES)
        for i in imps
        if _under(i.target, ("torch", "torchvision"))
        and not (i.lazy and _under(m, TORCH_LAZY))
    ]


RULES = {
    "library imports cli": library_imports_cli,
    "format needs torch": format_needs_torch,
    "frames know the format": frames_know_the_format,
    "torch outside train": torch_outside_train,
}


@pytest.fixture(scope="module")
def tree():
    modules = read_tree(ROOT)
    assert {"rainset.video", "rainset.image", "rainset.train.loop"} <= modules.keys()
    assert any(_under(m, ("rainset.dataset",)) for m in modules)
    return modules


@pytest.mark.parametrize("rule", RULES)
def test_rule_holds(tree, rule):
    assert RULES[rule](tree) == []


# ----------------------------------------------------------------------------- the checker notices


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))


BASE = {
    "rainset/__init__.py": "",
    "rainset/errors.py": "",
    "rainset/image.py": "import numpy as np\nfrom rainset.errors import InputError\n",
    "rainset/video.py": "from rainset.image import read_image\n",
    "rainset/helpers.py": "import json\n",
    "rainset/dataset/__init__.py": "from .reader import Dataset\n",
    "rainset/dataset/reader.py": "from rainset.helpers import x\nfrom rainset.image import y\n",
    "rainset/train/__init__.py": "import torch\n",
    "rainset/_gt_torch.py": "import torch\n",
    "rainset/groundtruth.py": "def _engine():\n    import torch\n",
    "rainset_cli/__init__.py": "",
    "rainset_cli/main.py": "import rainset.dataset\n",
}

BREAKS = {
    "library imports cli": {"rainset/helpers.py": "def f():\n    from rainset_cli.main import cli\n"},
    "format needs torch": {"rainset/helpers.py": "import torch\n"},  # reached through reader
    "frames know the format": {"rainset/image.py": "from rainset.dataset.reader import Dataset\n"},
    "torch outside train": {"rainset/helpers.py": "def f():\n    import torch.nn\n"},
}


@pytest.mark.parametrize("rule", RULES)
def test_rule_notices_a_breaking_import(tmp_path, rule):
    _write(tmp_path / "ok", BASE)
    assert RULES[rule](read_tree(tmp_path / "ok")) == []
    _write(tmp_path / "bad", {**BASE, **BREAKS[rule]})
    found = RULES[rule](read_tree(tmp_path / "bad"))
    assert found, f"{rule}: the breaking import went unnoticed"


def test_relative_and_package_imports_resolve(tmp_path):
    _write(tmp_path, {**BASE, "rainset/dataset/__init__.py": "from . import writer\n",
                      "rainset/dataset/writer.py": "from ..train import loop\n"})
    found = format_needs_torch(read_tree(tmp_path))
    assert any("rainset.dataset.writer:1 imports rainset.train" in f for f in found)
    # The package itself loads torch through writer -> rainset.train (import torch).
    assert any(f.startswith("importing rainset.dataset loads torch") for f in found)


# ----------------------------------------------------------------------------- at run time


def test_importing_the_format_and_frames_loads_no_torch():
    """What Python really loads (parent packages' __init__ included) agrees with the reading."""
    code = (
        "import sys, rainset, rainset.dataset, rainset.video, rainset.image, rainset.sheets\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', "
        "'rainset_cli', 'rainset.train')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
