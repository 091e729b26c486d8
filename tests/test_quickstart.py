"""The README's quick start on a fresh environment leaves `rainset` working from any folder.

The first quick-start command installs the package and runs the demo (numba compiles and caches
its kernels there); the second reinstalls it editable. Nothing the first writes may end up
inside the installed package, or the editable install is shadowed by a leftover folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def _quick_start_commands() -> list[str]:
    block = re.search(r"## Quick start\s+```bash\n(.*?)```", README, re.S)
    assert block, "README.md has no Quick start code block"
    lines = [ln.strip() for ln in block.group(1).splitlines() if ln.strip()]
    assert len(lines) == 2, lines
    return lines


def _copy_sources(dest: Path) -> None:
    """The working tree as a clone would have it (tracked and untracked-not-ignored files)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@pytest.mark.slow
def test_quick_start_leaves_the_command_working_from_any_folder(tmp_path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to copy the sources from")
    first, second = _quick_start_commands()
    install_half = second.split("&&")[0].strip()
    assert install_half.startswith("pip install"), second

    src = tmp_path / "src"
    _copy_sources(src)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    # Let the new environment see this one's packages (numpy, OpenCV, torch, ...) so the
    # quick start resolves its dependencies without downloading them again.
    inner = Path(
        subprocess.run(
            [str(env_dir / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )
    (inner / "outer-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["HOME"] = str(tmp_path / "home")  # a user cache folder of its own

    def sh(command: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=600)

    r = sh(first, src)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r = sh(install_half, src)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = sh("rainset --version", elsewhere)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(_version(src)), r.stdout
    # Nothing but Python's own bytecode was written inside the installed package.
    site = inner / "rainset"
    stray = [p.name for p in site.rglob("*") if p.suffix in (".nbi", ".nbc")] if site.exists() else []
    assert not stray, stray


def _version(src: Path) -> str:
    return re.search(r'^version = "([^"]+)"', (src / "pyproject.toml").read_text(), re.M).group(1)


def test_kernel_cache_goes_to_the_user_cache_folder(tmp_path):
    """numba's cache lands in RAINSET_CACHE_DIR, and an unwritable one falls back to a temp
    folder, never the package."""
    pkg = REPO / "rainset"
    code = (
        "import numpy as np; from rainset.groundtruth import estimate_clean; "
        "estimate_clean(np.random.default_rng(0).integers(0, 255, (5, 8, 8, 3), dtype=np.uint8))"
    )
    before = {p.name for p in pkg.rglob("*.nb*")}
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for cache, expect_files in ((tmp_path / "cache", True), (blocker / "below-a-file", False)):
        env = {**os.environ, "RAINSET_CACHE_DIR": str(cache)}
        env.pop("NUMBA_CACHE_DIR", None)
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           cwd=tmp_path, timeout=300)
        assert r.returncode == 0, r.stderr
        if expect_files:
            assert list(cache.rglob("*.nbi")), "no kernel cache written to RAINSET_CACHE_DIR"
    assert {p.name for p in pkg.rglob("*.nb*")} == before
