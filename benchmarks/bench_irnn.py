"""IRNN variants, SPANet training throughput and SPANet inference speed, as ratios.

Run: ``python benchmarks/bench_irnn.py [--device cpu|cuda] [--crop 64] [--batch 8]``;
``--inference-only`` skips the training part, ``--size 480x720`` sets the inference image,
``--compile`` adds a ``torch.compile``d variant of the new path.

Prints, for each IRNN method (``loop`` = per-step autograd, the baseline; ``sweep`` = custom
function with hand-written backward; ``scan`` = log-depth prefix scan):

- IRNN forward + backward time on a (batch, 32, crop, crop) feature map;
- a whole SPANet training step (forward, loss, backward, Adam) in images/s;

each as the median of interleaved repeats, with the ratio to ``loop`` measured in the same run
on the same device (shared machines make absolute numbers drift; ratios drift less).

Inference (``torch.inference_mode``, batch 1, one ``--size`` image): SPANet's forward pass in
ms per megapixel for

- ``sweep`` -- the path of ``rainset derain`` / ``validate`` before the compiled kernel (NCHW
  tensors, the ``sweep`` IRNN, three-op residual sums): the baseline;
- ``sweep+cl`` -- the same with channels-last tensors and weights (and, as every variant
  below, SPANet's fused residual sums);
- ``numba`` -- NCHW with the compiled CPU IRNN (``method="numba"``);
- ``numba+cl`` -- channels-last and the compiled IRNN: today's CPU path (``irnn="auto"``);
- ``numba+cl+compile`` (``--compile``) -- that under ``torch.compile``;

with the ratio to ``sweep`` (wall time, and CPU time of all threads) and the largest
difference of the outputs from it.
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


def bench_inference(device, size, rounds, compile_too=False):
    """SPANet forward (inference) per variant: {name: [seconds]}, and max |out - baseline|."""
    torch.manual_seed(0)
    base = SPANet(irnn_method="sweep").eval().to(device)
    # Trained weights are not needed for speed; random ones give activations of both signs.
    variants = {}
    cl = torch.channels_last
    x = torch.rand(1, 3, *size, device=device)
    for name, method, channels_last in (
        ("sweep", "sweep", False),
        ("sweep+cl", "sweep", True),
        ("numba", "numba", False),
        ("numba+cl", "numba", True),
    ):
        m = SPANet(irnn_method=method).eval().to(device)
        m.load_state_dict(base.state_dict())
        m.fused_sums = name != "sweep"  # the baseline as it was: three-op residual sums
        if channels_last:
            m = m.to(memory_format=cl)
        variants[name] = (m, x.contiguous(memory_format=cl) if channels_last else x)
    if compile_too:
        m = SPANet(irnn_method="numba").eval().to(device).to(memory_format=cl)
        m.load_state_dict(base.state_dict())
        variants["numba+cl+compile"] = (torch.compile(m), x.contiguous(memory_format=cl))
    times = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    outs = {}
    with torch.inference_mode():
        for k, (m, xx) in variants.items():  # warm-up: numba compile, oneDNN primitive cache
            outs[k] = m(xx)[0].float()
        for _ in range(rounds):
            for k, (m, xx) in variants.items():
                _sync(device)
                t, c = time.perf_counter(), time.process_time()
                m(xx)
                _sync(device)
                times[k].append(time.perf_counter() - t)
                cpu[k].append(time.process_time() - c)
    diff = {k: float((o - outs["sweep"]).abs().max()) for k, o in outs.items()}
    return times, cpu, diff


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the methods")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--size", default="240x360", help="inference image HxW")
    p.add_argument("--inference-rounds", type=int, default=3)
    p.add_argument("--inference-only", action="store_true")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow start)")
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
    h, w = (int(v) for v in args.size.lower().split("x"))
    inf_t, inf_c, diff = bench_inference(device, (h, w), args.inference_rounds, args.compile)
    mp = h * w / 1e6
    base = statistics.median(inf_t["sweep"])
    base_c = statistics.median(inf_c["sweep"])
    print(f"inference, SPANet forward on one {h}x{w} image (batch 1); wall and CPU time (all")
    print("threads: on a shared machine CPU time is the steadier measure of the work):")
    print(f"{'variant':18} {'wall ms/MP':>11} {'x sweep':>8} {'cpu ms/MP':>10} {'x sweep':>8} "
          f"{'max |diff|':>11}")
    for k, ts in inf_t.items():
        med, cmed = statistics.median(ts), statistics.median(inf_c[k])
        print(f"{k:18} {med / mp * 1e3:11.0f} {base / med:8.2f} {cmed / mp * 1e3:10.0f} "
              f"{base_c / cmed:8.2f} {diff[k]:11.2e}")
    if args.inference_only:
        return
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
