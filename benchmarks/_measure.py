"""Shared by the write-path benchmarks: a command's wall time and peak memory, the legacy setting.

``run(python(code))`` returns the wall seconds and the peak resident memory (RSS, MiB) of the
child process (its ``VmHWM``: that process alone, its own children not included), and its CPU
seconds (user + system, all threads) as a third item; ``medians`` takes the median wall and
CPU and the largest RSS.
``LEGACY`` is Python that, run before rainset is used, puts back the write path as it was
before issue 14: PNG zlib level 3 with OpenCV's default strategy and filters, and one encode
thread (serial writes).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LEGACY = (
    "import rainset.image as _I, rainset._encode as _E\n"
    "_I.PNG_SETTINGS.update({k: {'level': 3, 'strategy': 'default', 'filter': 'default'}"
    " for k in ('color', 'grey')})\n"
    "_E.encode_threads = lambda: 1\n"
)


#: Run first in every measured Python process: at exit it writes the process's own peak RSS
#: (``VmHWM``, KiB) to the file named by $RAINSET_BENCH_HWM. (``ru_maxrss`` of a child would
#: include the parent's peak at the fork, kept across exec.)
_HWM = (
    "import atexit as _a, os as _o\n"
    "def _hwm():\n"
    "    with open('/proc/self/status') as f:\n"
    "        v = next(x.split()[1] for x in f if x.startswith('VmHWM'))\n"
    "    open(_o.environ['RAINSET_BENCH_HWM'], 'w').write(v)\n"
    "_a.register(_hwm)\n"
)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str]) -> tuple[float, float, float]:
    """Run ``cmd`` (from :func:`python`); (wall seconds, peak RSS in MiB, CPU seconds). Raises
    on a non-zero exit."""
    with tempfile.NamedTemporaryFile(prefix="rainset-hwm-") as f:
        env = {**os.environ, "RAINSET_BENCH_HWM": f.name}
        cpu = _children_cpu()
        t = time.perf_counter()
        res = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        wall = time.perf_counter() - t
        cpu = _children_cpu() - cpu
        if res.returncode:
            raise RuntimeError(f"exited {res.returncode}:\n{res.stderr.decode(errors='replace')[-2000:]}")
        return wall, int(Path(f.name).read_text() or 0) / 1024, cpu


def python(code: str) -> list[str]:
    """A command running ``code`` in a fresh interpreter whose peak RSS :func:`run` reports."""
    return [sys.executable, "-c", _HWM + code]


def medians(samples: list[tuple]) -> tuple[float, float, float | None]:
    """Median wall, the largest peak RSS and the median CPU (None where not measured) of
    repeated runs."""
    cpu = [s[2] for s in samples if len(s) > 2]
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples), statistics.median(cpu) if cpu else None
