"""IRNN variants and SPANet training throughput, as ratios against the autograd loop.

Run: ``python benchmarks/bench_irnn.py [--device cpu|cuda] [--crop 64] [--batch 8]``.

Prints, for each IRNN method (``loop`` = per-step autograd, the baseline; ``sweep`` = custom
function with hand-written backward; ``scan`` = log-depth prefix scan):

- IRNN forward + backward time on a (batch, 32, crop, crop) feature map;
- a whole SPANet training step (forward, loss, backward, Adam) in images/s;

each as the median of interleaved repeats, with the ratio to ``loop`` measured in the same run
on the same device (shared machines make absolute numbers drift; ratios drift less).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rainset.train.irnn import irnn
from rainset.train.losses import spanet_loss
from rainset.train.spanet import SPANet

METHODS = ("loop", "sweep", "scan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_irnn(method, device, batch, crop, reps):
    x = torch.randn(batch, 32, crop, crop, device=device, requires_grad=True)
    w = torch.full((4, 32), 0.2, device=device, requires_grad=True)
    b = torch.zeros(4, 32, device=device, requires_grad=True)

    def run():
        out = irnn(x, w, b, method=method)
        out.sum().backward()

    run()
    times = []
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def bench_step(method, device, batch, crop, reps, amp):
    torch.manual_seed(0)
    model = SPANet(irnn_method=method).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, crop, crop, device=device)
    y = torch.rand(batch, 3, crop, crop, device=device)
    m = (torch.rand(batch, 1, crop, crop, device=device) > 0.5).float()

    def run():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out, maps = model(x)
        loss, _ = spanet_loss(out, y, maps[0], m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    run()
    times = []
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the methods")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--methods", default=",".join(METHODS))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    methods = [m for m in args.methods.split(",") if m]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"device: {device} ({name}), torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, batch {args.batch}, crop {args.crop}"
    )
    irnn_t = {m: [] for m in methods}
    step_t = {m: [] for m in methods}
    for _ in range(args.rounds):
        for m in methods:
            irnn_t[m] += bench_irnn(m, device, args.batch, args.crop, args.reps)
        for m in methods:
            step_t[m] += bench_step(
                m, device, args.batch, args.crop, args.reps, amp=device.type == "cuda"
            )
    base_i = statistics.median(irnn_t["loop"]) if "loop" in methods else None
    base_s = statistics.median(step_t["loop"]) if "loop" in methods else None
    print(f"{'method':8} {'irnn fw+bw ms':>14} {'x loop':>7} {'step img/s':>11} {'x loop':>7}")
    for m in methods:
        ti, ts = statistics.median(irnn_t[m]), statistics.median(step_t[m])
        ri = f"{base_i / ti:7.2f}" if base_i else "      -"
        rs = f"{base_s / ts:7.2f}" if base_s else "      -"
        print(f"{m:8} {ti * 1e3:14.1f} {ri} {args.batch / ts:11.1f} {rs}")


if __name__ == "__main__":
    main()
