"""Run a pipeline's inputs as tasks, one shard each, on this machine or on a Ray cluster.

One small interface keeps the engines out of the pipelines: an :class:`Executor` runs
:class:`Task` objects (a module-level function and its arguments, writing one shard) and yields
an :class:`Outcome` per task as tasks finish. :class:`LocalExecutor` runs them in worker
processes here; :class:`RayExecutor` on a Ray cluster (``pip install "rainset[ray]"``). A Dask
executor would be one more class with the same two methods.

:func:`run_sharded` is the driver: every task writes a self-contained shard (a finished rainset
dataset) in a staging folder, and the driver merges finished shards into the output in task
order (so the manifest has the order of a run on one machine, whatever the timing), deleting
each shard once merged (its files are hard-linked). Re-running after an interruption skips the
tasks already merged and merges, without running them again, the shards already finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rainset.errors import RainsetError
from rainset.inputs import STAGING_NAME

logger = logging.getLogger(__name__)

#: Ray's retries of a task whose worker died (or that raised something other than a
#: :class:`RainsetError`, which is a verdict on the input and is not retried).
MAX_RETRIES = 3
LEDGER_NAME = "merged.jsonl"
RAY_INSTALL = 'the Ray executor needs Ray: pip install "rainset[ray]" (or pip install ray)'


@dataclass(frozen=True)
class Task:
    """One input of a run: ``fn(shard, *args)`` writes the shard folder ``shard``.

    ``key`` is stable across runs (the scene id) and names the shard; ``label`` is the input
    as the user gave it, for messages; ``fingerprint`` (the input's sha256) makes a changed
    input run again on resume. ``fn`` must be a module-level function (it is sent to other
    processes and machines by reference).
    """

    key: str
    label: str
    fn: Callable[..., Any]
    args: tuple = ()
    fingerprint: str = ""


@dataclass
class Outcome:
    """How a task ended: ``value`` (what ``fn`` returned) or ``error`` (one line), and
    ``shard`` (the folder it wrote). ``skipped``: merged by an earlier run, not run again."""

    task: Task
    shard: Path
    value: Any = None
    error: str | None = None
    skipped: bool = False


class Executor(Protocol):
    """What the driver needs of an engine."""

    def run(self, calls: Sequence[tuple[Task, Path]]) -> Iterator[Outcome]:
        """Run each ``task.fn(shard, *task.args)``; yield outcomes as they finish (any order)."""
        ...

    def close(self) -> None:
        """Release what :meth:`run` started (worker processes, a local Ray)."""
        ...


class _OneShard(logging.Filter):
    """A shard holds one input: that its test split is empty says nothing of the dataset."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("%s: the test split is empty", "%s: test scenes with no"))


_ONE_SHARD = _OneShard()


def _call(fn, shard, args, cwd=None):
    """A task in a worker: a RainsetError is the input's fault, returned, not retried.

    ``cwd``: the driver's working folder, so that relative paths mean there what they mean to
    the driver (a worker of a cluster sees it through the shared storage)."""
    logging.getLogger("rainset.dataset").addFilter(_ONE_SHARD)
    if cwd is not None and os.path.isdir(cwd):
        os.chdir(cwd)
    try:
        return ("ok", fn(shard, *args))
    except RainsetError as exc:
        return ("failed", str(exc))


def _outcome(task: Task, shard: Path, status: str, value: Any) -> Outcome:
    """The Outcome of what :func:`_call` returned: ``("ok", value)`` or ``("failed", why)``."""
    return Outcome(task, shard, value if status == "ok" else None, None if status == "ok" else value)


class LocalExecutor:
    """Tasks in ``workers`` worker processes of this machine (:mod:`rainset._workers`)."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    def run(self, calls):
        from concurrent.futures import as_completed

        from rainset._workers import worker_pool

        with worker_pool(self.workers) as pool:
            futures = {pool.submit(_call, t.fn, s, t.args): (t, s) for t, s in calls}
            for f in as_completed(futures):
                task, shard = futures[f]
                try:
                    status, value = f.result()
                except Exception as exc:  # noqa: BLE001 - reported with its input
                    yield Outcome(task, shard, error=f"{type(exc).__name__}: {exc}")
                    continue
                yield _outcome(task, shard, status, value)

    def close(self) -> None:
        pass


class RayExecutor:
    """Tasks on a Ray cluster.

    Parameters
    ----------
    address : ``"auto"`` (the cluster this machine belongs to), ``"HOST:PORT"``, or None to
        start a local Ray with ``num_cpus`` CPUs and no dashboard (stopped by :meth:`close`).
        When Ray is already initialised in this process it is used as it is.
    num_cpus : CPUs of a local Ray.
    max_retries : retries of a task whose worker died or that raised unexpectedly.

    Raises
    ------
    RainsetError
        Ray is not installed (the message says how to install it).
    """

    def __init__(self, address: str | None = None, *, num_cpus: int = 1, max_retries: int = MAX_RETRIES):
        try:
            import ray
        except ImportError:
            raise RainsetError(RAY_INSTALL + ".") from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
            }  # fmt: skip
            if address is None:
                # A private local Ray ("local": never another one already running here), this
                # machine only, on the loopback interface.
                kwargs.update(num_cpus=num_cpus, _node_ip_address="127.0.0.1")
            try:
                ray.init(address=address or "local", **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray"
                raise RainsetError(f"cannot start or reach {where}: {_one_line(exc)}.") from None
            self._started = address is None
        self._remote = ray.remote(max_retries=max_retries, retry_exceptions=True)(_call)

    def run(self, calls):
        ray = self._ray
        cwd = os.getcwd()
        refs = {self._remote.remote(t.fn, s, t.args, cwd): (t, s) for t, s in calls}
        pending = list(refs)
        try:
            yield from self._wait(refs, pending)
        finally:
            for ref in pending:  # interrupted: what has not finished is stopped, not left to run
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def _wait(self, refs, pending):
        ray = self._ray
        while pending:
            done, rest = ray.wait(pending, num_returns=1)
            pending[:] = rest
            for ref in done:
                task, shard = refs[ref]
                try:
                    status, value = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - retries exhausted: reported with its input
                    cause = getattr(exc, "cause", None) or exc
                    yield Outcome(task, shard, error=_one_line(f"{type(cause).__name__}: {cause}"))
                    continue
                yield _outcome(task, shard, status, value)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def _one_line(text: str) -> str:
    lines = [x.strip() for x in str(text).splitlines() if x.strip()]
    return lines[-1] if lines else str(text)


def make_executor(kind: str, *, workers: int = 1, address: str | None = None) -> Executor:
    """``"local"`` (``workers`` processes) or ``"ray"`` (``address``, or a local Ray of
    ``workers`` CPUs)."""
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(address, num_cpus=workers)
    raise ValueError(f"executor must be 'local' or 'ray', got {kind!r}")


def ray_available() -> bool:
    """True when Ray can be imported."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


# ----------------------------------------------------------------------------- driver


def shard_name(key: str) -> str:
    """A task's shard folder name: the key made a file name, with a short hash so that two
    keys never share one (``cam1/clip`` -> ``cam1__clip-3f2a9c1e``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key.replace("/", "__"))
    return f"{safe[:80]}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def staging_folder(out: str | os.PathLike, staging: str | os.PathLike | None = None) -> Path:
    """Where the shards of a run into ``out`` are written: ``out/.rainset-staging``, or below
    ``staging`` (a path every worker can reach) in a folder of this output's own."""
    out = Path(out)
    if staging is None:
        return out / STAGING_NAME
    tag = hashlib.sha256(os.path.realpath(out).encode()).hexdigest()[:12]
    return Path(staging) / STAGING_NAME / f"{out.name}-{tag}"


@dataclass
class _Ledger:
    """Tasks already merged into the output (``out/.rainset-staging/merged.jsonl``)."""

    path: Path
    done: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, out: Path) -> _Ledger:
        from rainset.dataset.jsonl import scan_jsonl  # the one JSONL reader

        led = cls(out / STAGING_NAME / LEDGER_NAME)
        with contextlib.suppress(FileNotFoundError):
            for _, rec in scan_jsonl(led.path).records:  # a bad line: that task merges again
                with contextlib.suppress(KeyError, TypeError):
                    led.done[rec["task"]] = rec["fingerprint"]
        return led

    def has(self, task: Task) -> bool:
        return self.done.get(task.key) == task.fingerprint

    def add(self, task: Task) -> None:
        self.done[task.key] = task.fingerprint
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"task": task.key, "fingerprint": task.fingerprint}) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:  # a torn last line is skipped on load
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def _finished(shard: Path) -> bool:
    try:
        from rainset.dataset import layout

        return json.loads(layout.meta_path(shard).read_text(encoding="utf-8")).get("complete") is True
    except (OSError, ValueError, AttributeError):
        return False


def run_sharded(
    tasks: Sequence[Task],
    merger,
    executor: Executor,
    *,
    staging: str | os.PathLike | None = None,
) -> Iterator[Outcome]:
    """Run ``tasks`` on ``executor`` and merge their shards into ``merger`` in task order.

    Parameters
    ----------
    tasks : one per input, in the order their records should appear.
    merger : an entered :class:`rainset.merge.Merger` on the output.
    executor : see :class:`Executor`.
    staging : where the shards go (default: inside the output); see :func:`staging_folder`.

    Yields
    ------
    Outcome, one per task in task order, once its shard is merged (or it failed). A failed
    task's shard is left in the staging folder, and a rerun runs it again.
    """
    from rainset.merge import read_shard

    out = Path(merger.out)
    folder = staging_folder(out, staging)
    ledger = _Ledger.load(out)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys must be unique")
    outcomes: dict[int, Outcome] = {}
    to_run: list[tuple[Task, Path]] = []
    index = {t.key: i for i, t in enumerate(tasks)}
    for i, t in enumerate(tasks):
        shard = folder / shard_name(t.key)
        if ledger.has(t):
            outcomes[i] = Outcome(t, shard, skipped=True)
        elif _finished(shard):
            outcomes[i] = Outcome(t, shard)  # finished by an interrupted run: merged below
        else:
            to_run.append((t, shard))
    head = 0

    def drain():
        nonlocal head
        while head < len(tasks) and head in outcomes:
            oc = outcomes.pop(head)
            if oc.error is None and not oc.skipped:
                t0 = time.perf_counter()
                try:
                    shard = read_shard(oc.shard)
                except RainsetError as exc:  # e.g. a task that returned without finishing
                    oc.error = str(exc)
                else:
                    conflicts = merger.conflicts([shard])
                    if conflicts:
                        oc.error = f"its shard {oc.shard} conflicts with the output: {conflicts[0]}"
                    else:
                        merger.add(shard)
                        ledger.add(oc.task)
                        shutil.rmtree(oc.shard, ignore_errors=True)
                logger.debug("merged %s in %.2f s", oc.task.key, time.perf_counter() - t0)
            head += 1
            yield oc

    yield from drain()
    if to_run:
        folder.mkdir(parents=True, exist_ok=True)
        for oc in executor.run(to_run):
            outcomes[index[oc.task.key]] = oc
            yield from drain()
    yield from drain()
    with contextlib.suppress(OSError):
        folder.rmdir()  # empty once every shard is merged (a failed one stays to be looked at)
        if staging is not None:
            folder.parent.rmdir()  # --staging's .rainset-staging, when nothing else is in it
