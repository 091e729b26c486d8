"""IRNN: every implementation equals a slow per-element loop, forward and backward."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch") if os.environ.get("CI") != "true" else __import__("torch")

from rainset.train.irnn import DIRECTIONS, IRNN, irnn  # noqa: E402

METHODS = ("loop", "sweep", "scan")


def reference(x, weight, bias):
    """h_0 = relu(x_0), h_i = relu(a h_{i-1} + b + x_i), one pixel at a time, per direction."""
    B, C, H, W = x.shape
    blocks = []
    for d, name in enumerate(DIRECTIONS):
        h = [[[[None] * W for _ in range(H)] for _ in range(C)] for _ in range(B)]
        for n in range(B):
            for c in range(C):
                a, b = weight[d, c], bias[d, c]
                if name in ("up", "down"):
                    lines = [[(i, j) for i in range(H)] for j in range(W)]
                else:
                    lines = [[(i, j) for j in range(W)] for i in range(H)]
                for line in lines:
                    if name in ("up", "left"):
                        line = line[::-1]
                    prev = None
                    for i, j in line:
                        v = x[n, c, i, j] if prev is None else a * prev + b + x[n, c, i, j]
                        prev = torch.relu(v)
                        h[n][c][i][j] = prev
        block = torch.stack(
            [
                torch.stack([torch.stack([torch.stack(row) for row in h[n][c]]) for c in range(C)])
                for n in range(B)
            ]
        )
        blocks.append(block)
    return torch.cat(blocks, dim=1)


def _run(fn, x, w, b, g):
    x = x.clone().requires_grad_()
    w = w.clone().requires_grad_()
    b = b.clone().requires_grad_()
    out = fn(x, w, b)
    (out * g).sum().backward()
    return out.detach(), x.grad, w.grad, b.grad


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 2, 6, 6), (2, 1, 1, 4)])
@pytest.mark.parametrize("direction", range(4))
def test_equals_reference_forward_and_backward(method, shape, direction):
    gen = torch.Generator().manual_seed(hash((shape, direction)) % 1000)
    B, C, H, W = shape
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    # Weights of both signs, below 1 in magnitude so "scan" does not fall back to the sweep.
    w = torch.rand(4, C, generator=gen, dtype=torch.float64) * 1.8 - 0.9
    b = torch.randn(4, C, generator=gen, dtype=torch.float64) * 0.3
    # Upstream gradient on one direction's channel block only: checks each direction alone.
    g = torch.zeros(B, 4 * C, H, W, dtype=torch.float64)
    g[:, direction * C : (direction + 1) * C] = torch.randn(
        B, C, H, W, generator=gen, dtype=torch.float64
    )
    want = _run(reference, x, w, b, g)
    got = _run(lambda *t: irnn(*t, method=method), x, w, b, g)
    for name, p, q in zip(("out", "dx", "dweight", "dbias"), got, want):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-10, msg=f"{name} differs")
    # Only the chosen direction's parameters receive gradient.
    others = [d for d in range(4) if d != direction]
    assert torch.all(got[2][others] == 0) and torch.all(got[3][others] == 0)


def test_direction_semantics():
    # One positive pixel in the middle of a row of zeros: "right" carries it rightwards.
    x = torch.zeros(1, 1, 1, 5, dtype=torch.float64)
    x[0, 0, 0, 2] = 1.0
    w = torch.full((4, 1), 0.5, dtype=torch.float64)
    b = torch.zeros(4, 1, dtype=torch.float64)
    out = irnn(x, w, b, method="sweep")
    right, left = out[0, 1, 0], out[0, 3, 0]
    torch.testing.assert_close(right, torch.tensor([0, 0, 1, 0.5, 0.25], dtype=torch.float64))
    torch.testing.assert_close(left, torch.tensor([0.25, 0.5, 1, 0, 0], dtype=torch.float64))
    x = x.transpose(2, 3).contiguous()
    out = irnn(x, w, b, method="sweep")
    torch.testing.assert_close(out[0, 2, :, 0], right)  # down
    torch.testing.assert_close(out[0, 0, :, 0], left)  # up


@pytest.mark.parametrize("method", ("sweep", "scan"))
def test_long_scans_match_loop_in_float32(method):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 40, 33, generator=gen)
    w = torch.rand(4, 4, generator=gen) * 0.9
    b = torch.randn(4, 4, generator=gen) * 0.1
    g = torch.randn(2, 16, 40, 33, generator=gen)
    want = _run(lambda *t: irnn(*t, method="loop"), x, w, b, g)
    got = _run(lambda *t: irnn(*t, method=method), x, w, b, g)
    for p, q in zip(got, want):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-4)


def test_scan_falls_back_for_large_weights():
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    w = torch.full((4, 2), 1.5, dtype=torch.float64)
    b = torch.zeros(4, 2, dtype=torch.float64)
    torch.testing.assert_close(irnn(x, w, b, method="scan"), irnn(x, w, b, method="loop"))


def test_half_precision_input_is_computed_in_float32():
    x = torch.randn(1, 2, 6, 6)
    layer = IRNN(2)
    out = layer(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    want = layer(x.to(torch.bfloat16).float()).to(torch.bfloat16)
    torch.testing.assert_close(out, want, rtol=0, atol=0)


def test_layer_init_and_argument_checks():
    layer = IRNN(3)
    assert torch.all(layer.weight == 0.2) and torch.all(layer.bias == 0)
    assert sum(p.numel() for p in layer.parameters()) == 24
    with pytest.raises(ValueError, match="must be \\(4, 3\\)"):
        irnn(torch.zeros(1, 3, 4, 4), torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="method"):
        irnn(torch.zeros(1, 3, 4, 4), layer.weight, layer.bias, method="fast")
    with pytest.raises(ValueError, match="B, C, H, W"):
        irnn(torch.zeros(3, 4, 4), layer.weight, layer.bias)
