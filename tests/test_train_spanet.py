"""SPANet's layout and size, and its loss."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch") if os.environ.get("CI") != "true" else __import__("torch")

from rainset import metrics  # noqa: E402
from rainset.train.losses import spanet_loss, ssim  # noqa: E402
from rainset.train.spanet import SPANet, count_parameters  # noqa: E402


def test_parameter_count_matches_released_model_minus_direction_branch():
    model = SPANet()
    assert count_parameters(model) == 276_704
    # The released checkpoint's 283,716 include the discarded 7,012-parameter branch.
    assert count_parameters(model) + 7_012 == 283_716
    assert all(not isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_one_shared_attention_module_gives_four_fresh_maps():
    torch.manual_seed(0)
    model = SPANet().eval()
    calls = []
    model.sam.register_forward_hook(lambda m, i, o: calls.append(i[0].detach().clone()))
    x = torch.rand(2, 3, 21, 30)
    with torch.no_grad():
        out, maps = model(x)
    assert out.shape == (2, 3, 21, 30)
    assert len(maps) == 4 and len(calls) == 4
    for a in maps:
        assert a.shape == (2, 1, 21, 30)
        assert torch.all((a > 0) & (a < 1))
    # Each map is computed from the features entering its block group, which differ.
    assert not torch.equal(calls[0], calls[1])
    assert not torch.equal(maps[0], maps[1])


def test_attention_scales_blocks_4_to_15_only():
    torch.manual_seed(0)
    model = SPANet().eval()
    x = torch.rand(1, 3, 16, 16)
    seen = {}
    for k, block in enumerate(model.blocks, start=1):
        block.register_forward_hook(lambda m, i, o, k=k: seen.setdefault(k, (i[0], o)) and None)
    with torch.no_grad():
        _, maps = model(x)
    # Recompute block k's output from its input with the right rule.
    for k in (1, 3, 4, 9, 15, 16, 17):
        inp, branch = seen[k]
        nxt = seen[k + 1][0] if k < 17 else None
        if nxt is None:
            continue
        if 4 <= k <= 15:
            want = torch.relu(branch * maps[(k - 4) // 3] + inp)
        else:
            want = torch.relu(branch + inp)
        torch.testing.assert_close(nxt, want)


def test_methods_give_the_same_network_output():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 12, 17)
    outs = []
    for method in ("loop", "sweep", "scan"):
        torch.manual_seed(1)
        model = SPANet(irnn_method=method).eval()
        with torch.no_grad():
            outs.append(model(x)[0])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outs[0], outs[2], rtol=1e-5, atol=1e-5)


def test_torch_ssim_equals_metrics_ssim():
    rng = np.random.default_rng(0)
    a = rng.random((2, 3, 24, 19))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    got = ssim(torch.from_numpy(a), torch.from_numpy(b)).item()
    want = np.mean(
        [
            metrics.ssim(a[i].transpose(1, 2, 0), b[i].transpose(1, 2, 0), data_range=1.0)
            for i in range(2)
        ]
    )
    assert got == pytest.approx(want, abs=1e-10)


def test_loss_terms():
    torch.manual_seed(0)
    clean = torch.rand(2, 3, 16, 16)
    mask = (torch.rand(2, 1, 16, 16) > 0.5).float()
    loss, parts = spanet_loss(clean.clone(), clean, mask.clone(), mask)
    assert parts["l1"] == 0 and parts["att"] == 0 and abs(parts["ssim"]) < 1e-6
    out = clean + 0.1
    att = torch.full_like(mask, 0.5)
    loss, parts = spanet_loss(out, clean, att, mask)
    assert parts["l1"] == pytest.approx(0.1, abs=1e-6)
    assert parts["att"] == pytest.approx(0.25, abs=1e-6)
    assert parts["ssim"] == pytest.approx(1 - ssim(out, clean).item(), abs=1e-6)
    assert loss.item() == pytest.approx(parts["l1"] + parts["ssim"] + parts["att"], abs=1e-6)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_loss_backpropagates_to_every_parameter():
    torch.manual_seed(0)
    model = SPANet()
    x = torch.rand(2, 3, 16, 16)
    out, maps = model(x)
    loss, _ = spanet_loss(out, x, maps[0], (torch.rand(2, 1, 16, 16) > 0.5).float())
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []
