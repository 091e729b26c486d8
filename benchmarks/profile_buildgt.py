"""Where `build-gt --write clean` spends its wall time, against decode-only, in one run.

Runs the real command (``python -m rainset_cli -q build-gt CLIP --frames N --max-frames N
--write clean --review accept``) in a child process with timers around its stages, and a
decode-only child (``iter_frames`` over the clip, as ``bench_buildgt.py`` does), alternating,
``--repeat`` times; prints the median of each stage in seconds (main thread wall time):

  interpreter start   process launch to the first line of the child
  imports             rainset_cli, rainset and their libraries (cv2, av, scipy, numba, ...)
  probe + plan        probe the clip, plan windows, open the dataset
  wait for frames     the main thread waiting on the decode thread (decoding not overlapped)
  stack fill          copying decoded frames into the window's frame stack
  motion check        MotionMeter.update (luma, downscale) and .report (phase correlation; since
                      issue 14 also every 16 frames while the window decodes)
  estimate            estimate_clean (numba kernels; their cache load runs in a thread meanwhile)
  preview             the preview sheet and its PNG on the main thread (none with --review accept
                      since issue 14: drawn and encoded by the encoder pool meanwhile)
  clean PNG + flush   writing the window's clean image(s) and waiting for the encoder pool
  exit                after the command returns: interpreter shutdown, joins (the CLI freezes the
                      objects out of the final garbage collections since issue 14)
  other               the rest of the command (review log, manifest, messages)

Also printed: the CPU time (user + sys, all threads) of both processes and its ratio, the
steadier figure on a busy machine, and the CPU of the command's other threads (the decode
thread with FFmpeg's, the estimator's, the stack prefault, the numba warm-up, the encoders).
With ``--compare-prefault`` each round also runs build-gt with the frame stack filled as before
issue 14 (no ``FrameStack.prefault``), in the same run.

The clip is bench_buildgt.py's (made there and cached in benchmarks/.cache/).

Usage: python benchmarks/profile_buildgt.py [--repeat 3] [--frames 200] [--height 1080] [--compare-prefault]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

STAGES = (
    "interpreter start", "imports", "probe + plan", "wait for frames", "stack fill", "motion check",
    "estimate", "preview", "clean PNG + flush", "other", "exit",
)  # fmt: skip


def child(clip: str, out: str, frames: int, t_launch: float, result: str) -> None:
    """Inside the profiled process: wrap the stages, run the command, dump the timings."""
    t_first = time.time()
    import threading

    main_thread = threading.main_thread()
    acc: dict[str, float] = {s: 0.0 for s in STAGES}
    cpu: dict[str, float] = {s: 0.0 for s in STAGES}
    acc["interpreter start"] = t_first - t_launch
    t0 = time.perf_counter()
    import rainset.buildgt as B
    import rainset.groundtruth as G  # noqa: F401 - timed as an import
    import rainset.registration as R
    from rainset_cli.main import cli

    acc["imports"] = time.perf_counter() - t0
    cpu["imports"] = time.process_time()  # one thread so far
    active: list[str] = []

    def timed(stage, fn):
        def wrapper(*a, **k):
            if threading.current_thread() is not main_thread or active:
                return fn(*a, **k)  # nested or off the main thread: counted by the caller
            active.append(stage)
            t, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                acc[stage] += time.perf_counter() - t
                cpu[stage] += time.thread_time() - c
                active.pop()

        return wrapper

    B.estimate_clean = timed("estimate", B.estimate_clean)
    B.preview_sheet = timed("preview", B.preview_sheet)
    B.write_image = timed("preview", B.write_image)  # buildgt writes only the preview itself
    B._write_window = timed("clean PNG + flush", B._write_window)
    B._flush = timed("clean PNG + flush", B._flush)
    R.MotionMeter.update = timed("motion check", R.MotionMeter.update)
    R.MotionMeter.report = timed("motion check", R.MotionMeter.report)
    B.FrameStack.append = timed("stack fill", B.FrameStack.append)
    B.probe = timed("probe + plan", B.probe)
    B.plan_windows = timed("probe + plan", B.plan_windows)
    orig_init = B._Frames.__init__

    def frames_init(self, *a, **k):
        orig_init(self, *a, **k)
        inner = self._it

        def waiting():
            while True:
                t, c = time.perf_counter(), time.thread_time()
                try:
                    f = next(inner)
                except StopIteration:
                    f = None
                acc["wait for frames"] += time.perf_counter() - t
                cpu["wait for frames"] += time.thread_time() - c
                if f is None:
                    return
                yield f

        self._it = _Closable(waiting(), inner)  # close() still stops the decode thread

    B._Frames.__init__ = frames_init
    if os.environ.get("RAINSET_PROFILE_NO_PREFAULT"):  # the stack filled as before issue 14
        B.FrameStack.prefault = lambda self, n: None
    args = ["-q", "build-gt", clip, "--frames", str(frames), "--max-frames", str(frames),
            "--write", "clean", "--review", "accept", "-o", out]  # fmt: skip
    t, c, c_all = time.perf_counter(), time.thread_time(), time.process_time()
    try:
        cli.main(args=args, prog_name="rainset", standalone_mode=False)
    finally:
        total = time.perf_counter() - t
        acc["other"] = total - sum(acc[s] for s in STAGES[2:-2])
        cpu["other"] = time.thread_time() - c - sum(cpu[s] for s in STAGES[2:-2])
        acc["_command"] = total
        acc.update({f"cpu:{k}": v for k, v in cpu.items()})
        acc["cpu:_other threads"] = time.process_time() - c_all - (time.thread_time() - c)
        acc["_t_end"] = time.time()
        Path(result).write_text(json.dumps(acc))


class _Closable:
    """An iterator over ``gen`` whose close() closes ``inner`` (the prefetching generator)."""

    def __init__(self, gen, inner):
        self._gen, self._inner = gen, inner

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._gen)

    def close(self):
        self._inner.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--compare-prefault", action="store_true",
                    help="also run build-gt without the stack prefault (before issue 14) each round")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        clip, out, frames, t_launch, result = args.child
        child(clip, out, int(frames), float(t_launch), result)
        return
    clip = HERE / ".cache" / f"static_{args.height}p_{args.frames}.mp4"
    if not clip.exists():
        sys.path.insert(0, str(HERE))
        import bench_buildgt

        clip.parent.mkdir(exist_ok=True)
        print(f"making {clip} ...", flush=True)
        bench_buildgt.make_clip(clip, args.frames, args.height)
    py = sys.executable
    decode = [py, "-c", f"from rainset.video import iter_frames\nfor f in iter_frames({str(clip)!r}): pass"]
    work = Path(tempfile.mkdtemp(prefix="rainset-profile-"))

    def children_cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    subprocess.run(decode, check=True)  # warm the page cache
    variants = ["", "no prefault"] if args.compare_prefault else [""]
    rows_of: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    ratios_of: dict[str, list[float]] = {v: [] for v in variants}
    cpu_ratios_of: dict[str, list[float]] = {v: [] for v in variants}
    try:
        for i in range(args.repeat + 1):  # the first build-gt run warms numba's cache
            t, c = time.perf_counter(), children_cpu()
            subprocess.run(decode, check=True)
            t_dec, c_dec = time.perf_counter() - t, children_cpu() - c
            for v in variants:
                env = dict(os.environ, RAINSET_PROFILE_NO_PREFAULT="1") if v else None
                res = work / f"r{i}{v[:2]}.json"
                t_launch = time.time()
                t, c = time.perf_counter(), children_cpu()
                subprocess.run([py, __file__, "--child", str(clip), str(work / f"out{i}{v[:2]}"), str(args.frames),
                                repr(t_launch), str(res)], check=True, stdout=subprocess.DEVNULL, env=env)  # fmt: skip
                wall, c_build = time.perf_counter() - t, children_cpu() - c
                t_exit = time.time()
                acc = json.loads(res.read_text())
                acc.pop("cpu:exit", None)
                acc.pop("cpu:interpreter start", None)
                acc["exit"] = t_exit - acc.pop("_t_end")
                acc["_wall"], acc["_decode"] = wall, t_dec
                acc["_cpu_build"], acc["_cpu_decode"] = c_build, c_dec
                if i:
                    rows_of[v].append(acc)
                    ratios_of[v].append(wall / t_dec)
                    cpu_ratios_of[v].append(c_build / c_dec)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for v in variants:
        report(clip, args.repeat, rows_of[v], ratios_of[v], cpu_ratios_of[v], v)


def report(clip, repeat, rows, ratios, cpu_ratios, variant) -> None:
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    what = f", {variant}" if variant else ""
    print(f"clip: {clip.name}  cores: {os.cpu_count()}  repeat: {repeat} (medians, seconds){what}")
    print(f"{'decode-only (whole process)':28s} {med['_decode']:6.2f}   CPU {med['_cpu_decode']:.2f} s")
    print(f"{'build-gt --write clean':28s} {med['_wall']:6.2f}   ratio {statistics.median(ratios):.2f}x "
          f"(per-run ratios {', '.join(f'{r:.2f}' for r in ratios)}; target <= 1.5x)")  # fmt: skip
    print(f"{'':28s} {'':6s}   CPU {med['_cpu_build']:.2f} s, ratio {statistics.median(cpu_ratios):.2f}x "
          f"(all threads, user + sys; the steadier figure on a busy machine)")  # fmt: skip
    print(f"  {'stage':26s} {'wall':>6s}   {'[min - max]':13s} {'main-thread CPU':>15s}")
    for s in STAGES:
        spread = [r[s] for r in rows]
        c = f"{med['cpu:' + s]:15.2f}" if "cpu:" + s in med else ""
        print(f"  {s:26s} {med[s]:6.2f}   [{min(spread):.2f} - {max(spread):.2f}] {c}")
    print(f"  {'(sum of stages)':26s} {sum(med[s] for s in STAGES):6.2f}")
    print(f"  {'CPU of the other threads (decode thread, FFmpeg, encoders, numba warm-up) during the command':s}: "
          f"{med['cpu:_other threads']:.2f} s")


if __name__ == "__main__":
    main()
