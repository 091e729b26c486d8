"""The time-lapse losses (L_b, L_s, L_v), the rain-direction loss and the time-lapse objective's
pieces, each against a direct computation on small tensors (slow, obvious loops)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rainset.streaks import direction_class, direction_kernels  # noqa: E402
from rainset.train.losses import (  # noqa: E402
    DirectionalGradient,
    background_consistency,
    direction_kernel_pair,
    rain_direction_loss,
    structure_gamma,
    structure_similarity,
)
from rainset.train.objectives import (  # noqa: E402
    TimelapseObjective,
    identity_init,
    rain_model,
)


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=torch.float64)


def _masks(b, h, w, seed):
    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.random((b, 1, h, w)) < 0.3).astype(np.float64))


def _masked_mean_abs(x, y, ma, mb):
    total, n = 0.0, 0
    B, C, H, W = x.shape
    for b in range(B):
        for i in range(H):
            for j in range(W):
                if ma[b, 0, i, j] > 0.5 or mb[b, 0, i, j] > 0.5:
                    continue
                for c in range(C):
                    total += abs(float(x[b, c, i, j]) - float(y[b, c, i, j]))
                    n += 1
    return total / n


def test_background_consistency_is_the_l1_between_the_two_backgrounds_outside_both_masks():
    a, b = _rand(2, 3, 5, 6, seed=1), _rand(2, 3, 5, 6, seed=2)
    ma, mb = _masks(2, 5, 6, 3), _masks(2, 5, 6, 4)
    got = float(background_consistency(a, b, ma, mb))
    assert got == pytest.approx(_masked_mean_abs(a, b, ma, mb), rel=1e-6)
    # without masks: the plain mean; a moving object's pixels do not count
    assert float(background_consistency(a, b)) == pytest.approx(float((a - b).abs().mean()))
    b2 = b.clone()
    b2[ma.expand_as(b2) > 0.5] += 10.0  # change only masked pixels
    assert float(background_consistency(a, b2, ma, mb)) == pytest.approx(got, rel=1e-6)


def test_structure_similarity_pairs_each_input_with_the_other_frames_output():
    ia, ib = _rand(2, 3, 4, 5, seed=5), _rand(2, 3, 4, 5, seed=6)
    ba, bb = _rand(2, 3, 4, 5, seed=7), _rand(2, 3, 4, 5, seed=8)
    ma, mb = _masks(2, 4, 5, 9), _masks(2, 4, 5, 10)
    gamma = 0.037
    want = gamma * 0.5 * (_masked_mean_abs(ia, bb, ma, mb) + _masked_mean_abs(ib, ba, ma, mb))
    got = float(structure_similarity(ia, ib, ba, bb, gamma, ma, mb))
    assert got == pytest.approx(want, rel=1e-6)
    # m != n: an output equal to its own input is not rewarded, one equal to the other's is
    assert float(structure_similarity(ia, ib, ia, ib, 1.0)) > 0
    assert float(structure_similarity(ia, ib, ib, ia, 1.0)) == 0.0


def test_gamma_falls_linearly_from_0_1_to_0_0001_over_the_first_30_percent_then_stays():
    iters = 1000
    assert structure_gamma(0, iters) == pytest.approx(0.1)
    assert structure_gamma(150, iters) == pytest.approx((0.1 + 1e-4) / 2)
    assert structure_gamma(300, iters) == pytest.approx(1e-4)
    assert structure_gamma(999, iters) == pytest.approx(1e-4)
    values = [structure_gamma(s, iters) for s in range(0, 301, 10)]
    assert all(x > y for x, y in zip(values, values[1:], strict=False))
    obj = TimelapseObjective(iters)
    assert obj.gamma(150) == pytest.approx(structure_gamma(150, iters))


def _theta_loop(s):
    """Grey S -> (theta, valid) per pixel with forward differences, by loops."""
    B, C, H, W = s.shape
    theta = np.zeros((B, H - 1, W - 1))
    valid = np.zeros((B, H - 1, W - 1), bool)
    for b in range(B):
        for i in range(H - 1):
            for j in range(W - 1):
                g = [sum(float(s[b, c, y, x]) for c in range(C)) / C
                     for y, x in ((i, j), (i, j + 1), (i + 1, j))]
                gx, gy = g[1] - g[0], g[2] - g[0]
                if math.hypot(gx, gy) < 1 / 255:
                    continue
                t = math.atan(gy / gx) if gx != 0 else -math.pi / 2  # atan(+-inf) folded
                if t >= math.pi / 2:
                    t -= math.pi
                theta[b, i, j], valid[b, i, j] = t, True
    return theta, valid


def test_directional_gradient_loss_by_loops():
    mod = DirectionalGradient(4).double()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # non-trivial memberships and centres
        mod.assign.weight.copy_(torch.randn(4, 1, 3, 3, generator=g, dtype=torch.float64))
        mod.assign.bias.copy_(torch.randn(4, generator=g, dtype=torch.float64))
        mod.centres.copy_(torch.tensor([-1.2, -0.3, 0.4, 1.1], dtype=torch.float64))
    s = _rand(2, 3, 6, 7, seed=11) * 0.2
    s[0, :, 2, :] = 0.05  # a flat row: zero gradients are left out
    theta, valid = _theta_loop(s)
    w = mod.assign.weight.detach().numpy()
    bias = mod.assign.bias.detach().numpy()
    c = mod.centres.detach().numpy()
    B, H, W = theta.shape
    V = np.zeros(4)
    n = valid.sum()
    for b in range(B):
        for i in range(H):
            for j in range(W):
                if not valid[b, i, j]:
                    continue
                logits = np.zeros(4)
                for k in range(4):
                    acc = bias[k]
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            y, x = i + dy, j + dx
                            if 0 <= y < H and 0 <= x < W:  # zero padding
                                acc += w[k, 0, dy + 1, dx + 1] * theta[b, y, x]
                    logits[k] = acc
                alpha = np.exp(logits - logits.max())
                alpha /= alpha.sum()
                for k in range(4):
                    V[k] += alpha[k] * abs(theta[b, i, j] - c[k])
    want = np.abs(V / n).sum()
    got = float(mod(s).detach())
    assert got == pytest.approx(want, rel=1e-6)


@pytest.mark.slow
def test_directional_gradient_centres_are_learned_by_minimising_l_v():
    # rain of one orientation: S(x, y) = 0.02 (x cos t + y sin t): gradient angle t everywhere,
    # 0.2 rad from the nearest starting centre (pi/8)
    t = 0.6
    yy, xx = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    s = (0.02 * (xx * math.cos(t) + yy * math.sin(t))).expand(1, 3, 8, 8)
    mod = DirectionalGradient(4)
    with torch.no_grad():
        before = float(mod(s))
    opt = torch.optim.Adam(mod.parameters(), lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        mod(s).backward()
        opt.step()
    with torch.no_grad():
        assert float(mod(s)) < 0.5 * before
    assert float((mod.centres.detach() - t).abs().min()) < 0.05


def test_rain_direction_loss_by_loops():
    B, C, H, W = 2, 3, 8, 9
    rainy, out = _rand(B, C, H, W, seed=20), _rand(B, C, H, W, seed=21)
    rmap = _rand(B, 1, H, W, seed=22)
    kernels = torch.stack([
        torch.stack(direction_kernel_pair([(9, 1.0)])),
        torch.stack(direction_kernel_pair([(7, 0.5), (8, 0.5)], flipped=True)),
    ]).double()
    got = float(rain_direction_loss(rainy, out, rmap, kernels))
    z = (rainy - out).numpy()
    gt = rmap.numpy()
    kn = kernels.numpy()
    size = kn.shape[-1]
    total = 0.0
    for d in range(2):  # parallel, perpendicular: the two terms of Eq. 5
        acc, n = 0.0, 0
        for b in range(B):
            k = kn[b, d]
            for c in range(C):
                for i in range(H - size + 1):
                    for j in range(W - size + 1):
                        rz = sum(k[u, v] * z[b, c, i + u, j + v]
                                 for u in range(size) for v in range(size))
                        rg = sum(k[u, v] * gt[b, 0, i + u, j + v]
                                 for u in range(size) for v in range(size))
                        acc += abs(rz - rg)
                        n += 1
        total += acc / n
    assert got == pytest.approx(total, rel=1e-6)
    # no loss when the estimated rain is the rain map
    assert float(rain_direction_loss(rmap.expand(B, C, H, W) + out, out, rmap, kernels)) < 1e-12


def test_angles_between_two_bins_blend_the_two_kernels():
    bank = direction_kernels()
    for theta, (lo, hi) in ((15.0, (7, 8)), (-15.0, (10, 11))):
        hard, soft = direction_class(theta)
        assert sorted(b for b, _ in soft) == [lo, hi]
        assert all(w == pytest.approx(0.5) for _, w in soft)
        kp, kq = direction_kernel_pair(soft)
        assert np.allclose(kp.numpy(), 0.5 * (bank[lo] + bank[hi]), atol=1e-7)
        assert np.allclose(kq.numpy(), 0.5 * (bank[(lo + 9) % 18] + bank[(hi + 9) % 18]),
                           atol=1e-7)
        # the blend differentiates along the class angle (75 / 105 deg), scaled by cos 5 deg
        phi = math.radians((90.0 - theta) % 180.0)
        d = np.array([math.cos(phi), -math.sin(phi)])  # screen y points down
        g = np.array([0.3, -0.7])
        yy, xx = np.mgrid[-2:3, -2:3]
        ramp = g[0] * xx + g[1] * yy
        assert float((kp.numpy() * ramp).sum()) == pytest.approx(
            math.cos(math.radians(5)) * float(g @ d), rel=1e-4)
    # a mirrored patch: bin i -> (18 - i) % 18
    kp, _ = direction_kernel_pair([(5, 1.0)], flipped=True)
    assert np.allclose(kp.numpy(), bank[13])
    kp, _ = direction_kernel_pair([(0, 1.0)], flipped=True)
    assert np.allclose(kp.numpy(), bank[0])


def test_rain_model_penalty_by_loops():
    s = _rand(2, 3, 4, 4, seed=30) - 0.3
    a = s.numpy()
    chroma = np.mean([abs(a[b, c, i, j] - a[b, :, i, j].mean())
                      for b in range(2) for c in range(3) for i in range(4) for j in range(4)])
    neg = np.mean([max(0.0, -a[b, c, i, j])
                   for b in range(2) for c in range(3) for i in range(4) for j in range(4)])
    assert float(rain_model(s)) == pytest.approx(chroma + neg, rel=1e-6)
    grey_bright = torch.rand(1, 1, 4, 4).expand(1, 3, 4, 4)
    assert float(rain_model(grey_bright)) < 1e-7


def test_identity_init_makes_spanet_compute_its_input():
    from rainset.train.spanet import SPANet

    torch.manual_seed(0)
    model = identity_init(SPANet(irnn_method="sweep"))
    x = torch.rand(2, 3, 20, 24)
    with torch.no_grad():
        out, _ = model(x)
    assert torch.equal(out, x)


def test_timelapse_objective_sums_the_weighted_terms():
    obj = TimelapseObjective(100).double()
    fa, fb = _rand(1, 3, 16, 16, seed=40), _rand(1, 3, 16, 16, seed=41)
    ba, bb = _rand(1, 3, 16, 16, seed=42), _rand(1, 3, 16, 16, seed=43)
    ma, mb = _masks(1, 16, 16, 44), _masks(1, 16, 16, 45)
    loss, parts = obj(fa, fb, ba, bb, ma, mb, step=10)
    gamma = structure_gamma(10, 100)
    rain = torch.cat([fa - ba, fb - bb])
    want = (
        1.0 * float(background_consistency(ba, bb, ma, mb))
        + 0.1 * float(structure_similarity(fa, fb, ba, bb, gamma, ma, mb))
        + 0.01 * float(obj.directional(rain).detach())
        + obj.lambda_m * float(rain_model(rain))
    )
    assert float(loss.detach()) == pytest.approx(want, rel=1e-9)
    assert parts["gamma"] == pytest.approx(gamma)
    assert set(parts) >= {"lb", "ls", "lv", "lm", "gamma", "loss"}
