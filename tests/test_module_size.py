"""Library modules stay small (STYLE.md: "a few hundred lines"): none exceeds 500 lines unless
its docstring says why, in a sentence naming its length ("Length (~600 lines, ...)", "About
520 lines, ...", "Longer than ~500 lines on purpose: ...")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 500
#: A sentence about the module's length: a number of lines (or "~500 lines").
REASON = re.compile(r"~?\d{3,4}\s+lines", re.IGNORECASE)


def _long_without_reason(root: Path) -> list[str]:
    bad = []
    for path in sorted((root / "rainset").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n <= LIMIT:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not REASON.search(doc):
            bad.append(f"{path.relative_to(root)} ({n} lines)")
    return bad


def test_long_modules_say_why():
    assert _long_without_reason(ROOT) == []


def test_the_check_reads_the_docstring(tmp_path):
    (tmp_path / "rainset").mkdir()
    body = "x = 1\n" * (LIMIT + 1)
    (tmp_path / "rainset" / "long.py").write_text('"""A module."""\n' + body)
    (tmp_path / "rainset" / "short.py").write_text('"""A module."""\nx = 1\n')
    (tmp_path / "rainset" / "why.py").write_text(
        '"""A module.\n\nLength (~510 lines): one table.\n"""\n' + body
    )
    assert _long_without_reason(tmp_path) == [f"rainset/long.py ({LIMIT + 2} lines)"]
