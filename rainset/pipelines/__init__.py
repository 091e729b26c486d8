"""One call per pipeline: the orchestration behind the ``rainset`` commands.

Each call runs to completion and returns a result object (what was written, what was refused
and why, the dataset's counts); an optional ``progress`` callback gets an :class:`Event` at
each step (the command line shows them as its progress bar and lines). The calls are also
importable from the package top level (``rainset.build_gt``, ...). Options and their defaults
are the dataclasses of :mod:`rainset.options`.

==============================  ===================================================
:func:`build_gt`                clean ground truth from static rain videos
:func:`find_pairs`              time-lapse frame pairs from the static stretches
:func:`synthesize`              synthetic rain on clean photos
:func:`import_dataset`          a published layout or paired folders into the format
:func:`export_dataset`          a dataset into another trainer's layout
==============================  ===================================================
"""

from __future__ import annotations

from rainset.pipelines._common import Event, Progress, Refusal, Result

_CALLS = {
    "build_gt": "rainset.pipelines.gt",
    "BuildResult": "rainset.pipelines.gt",
    "WindowRow": "rainset.pipelines.gt",
    "find_pairs": "rainset.pipelines.pairs",
    "PairsResult": "rainset.pipelines.pairs",
    "synthesize": "rainset.pipelines.synth",
    "SynthResult": "rainset.pipelines.synth",
    "import_dataset": "rainset.pipelines.exchange",
    "export_dataset": "rainset.pipelines.exchange",
    "ImportResult": "rainset.pipelines.exchange",
}

__all__ = ["Event", "Progress", "Refusal", "Result", *_CALLS]


def __getattr__(name: str):
    module = _CALLS.get(name)
    if module is None:
        raise AttributeError(f"module 'rainset.pipelines' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
