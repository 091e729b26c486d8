"""The CPU inference path of SPANet (issue 17): the compiled IRNN kernel, channels-last tensors
and in-place residual sums give the outputs of the old path (NCHW, ``sweep``) within float
tolerance."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch") if os.environ.get("CI") != "true" else __import__("torch")

from test_train_irnn import reference  # noqa: E402

from rainset.train.irnn import irnn  # noqa: E402
from rainset.train.spanet import SPANet  # noqa: E402


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 2, 6, 6), (2, 1, 1, 4), (1, 3, 4, 1)])
def test_numba_kernel_equals_the_reference(shape):
    gen = torch.Generator().manual_seed(sum(shape))
    B, C, H, W = shape
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    w = torch.rand(4, C, generator=gen, dtype=torch.float64) * 2.4 - 1.2  # |a| > 1 too
    b = torch.randn(4, C, generator=gen, dtype=torch.float64) * 0.3
    with torch.no_grad():
        got = irnn(x, w, b, method="numba")
    torch.testing.assert_close(got, reference(x, w, b), rtol=1e-12, atol=1e-12)


def test_numba_kernel_on_a_large_map_in_threads_matches_the_sweep():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 8, 70, 130, generator=gen)  # above the size where work is split
    w = torch.rand(4, 8, generator=gen) * 1.8 - 0.9
    b = torch.randn(4, 8, generator=gen) * 0.3
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch.inference_mode():
            got = irnn(x.contiguous(memory_format=torch.channels_last), w, b, method="numba")
            want = irnn(x, w, b, method="sweep")
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_numba_falls_back_where_a_gradient_is_needed():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.full((4, 2), 0.3, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)
    irnn(x, w, b, method="numba").sum().backward()
    gx = x.grad.clone()
    x.grad = None
    irnn(x, w, b, method="sweep").sum().backward()
    torch.testing.assert_close(gx, x.grad)


def test_spanet_inference_path_matches_the_old_path(monkeypatch):
    import rainset.train.irnn as irnn_module

    calls = []
    kernel = irnn_module._irnn_numba
    monkeypatch.setattr(irnn_module, "_irnn_numba", lambda *a: calls.append(1) or kernel(*a))
    torch.manual_seed(0)
    old = SPANet(irnn_method="sweep").eval()
    old.fused_sums = False
    new = SPANet().eval()  # auto: the numba kernel on the CPU under inference mode
    new.load_state_dict(old.state_dict())
    new = new.to(memory_format=torch.channels_last)
    # Weights away from their 0.2 start, so that the recurrences matter.
    with torch.no_grad():
        for m in (old, new):
            m.sam.irnn1.weight.copy_(torch.linspace(-0.9, 0.9, 128).view(4, 32))
            m.sam.irnn2.bias.copy_(torch.linspace(-0.1, 0.1, 128).view(4, 32))
    x = torch.rand(1, 3, 37, 53)
    with torch.inference_mode():
        want, want_maps = old(x)
        got, got_maps = new(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert len(calls) == 8  # the new path ran: two IRNNs in each of the four SAM calls
    for g, w in zip(got_maps, want_maps):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)
