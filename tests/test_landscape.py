"""bn_helpers.landscape against independent oracles on real MNIST.

Oracles: torch.nn.BatchNorm1d for noisy BN without noise, a deep copy of the model moved
by hand and differentiated with loss.backward() for the gradient-change and landscape
probes, numpy for norms and cosines, training.train for the SGD loop of `track`.
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bn_helpers import landscape, models, training
from bn_helpers.data import load_mnist


@pytest.fixture(scope="module")
def mnist():
    x, y = load_mnist("train", n=600, seed=0)
    return torch.from_numpy(x), torch.from_numpy(y)


def _net(batchnorm, seed=0):
    return models.build_mlp(batchnorm=batchnorm, init_std=0.1, seed=seed)


def _hand_moved_grad(net, x, y, *, move, step, wrt):
    """Oracle: copy net, p -= step * grad(p) for parameter names in `move`, then the
    gradients (loss.backward) of the parameters named in `wrt`."""
    net = copy.deepcopy(net)
    F.cross_entropy(net(x), y).backward()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name in move:
                p -= step * p.grad
    net.zero_grad()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    named = dict(net.named_parameters())
    return float(loss.detach()), [named[n].grad.clone() for n in wrt]


# ------------------------------------------------------------------ noisy BN

def test_noisy_bn_without_noise_is_bn_exactly(mnist):
    x, _ = mnist
    net = _net(True)
    noisy = landscape.add_noise(net, max_shift=0.0, max_scale=1.0, seed=3)
    for mode in ("train", "eval"):
        getattr(net, mode)()
        getattr(noisy, mode)()
        assert torch.equal(net(x[:60]), noisy(x[:60])), mode
    bn = [m for m in net if isinstance(m, nn.BatchNorm1d)]
    nbn = [m for m in noisy if isinstance(m, landscape.NoisyBatchNorm1d)]
    for a, b in zip(bn, nbn, strict=True):  # running statistics updated alike
        assert torch.equal(a.running_mean, b.running_mean)
        assert torch.equal(a.running_var, b.running_var)


def test_noisy_bn_is_scale_and_shift_of_bn():
    z = torch.from_numpy(np.random.default_rng(0).normal(2, 3, (60, 100))).float()
    plain = nn.BatchNorm1d(100)
    noisy = landscape.NoisyBatchNorm1d(100, max_shift=0.5, max_scale=1.25, seed=7)
    out1, s1, c1 = noisy(z), noisy.last_scale, noisy.last_shift
    assert ((s1 >= 1) & (s1 <= 1.25)).all() and (c1.abs() <= 0.5).all()
    assert s1.std() > 0 and c1.std() > 0  # one draw per unit
    torch.testing.assert_close(out1, plain(z) * s1 + c1, rtol=0, atol=0)
    noisy(z)
    assert not torch.equal(noisy.last_scale, s1)  # redrawn at every pass
    again = landscape.NoisyBatchNorm1d(100, max_shift=0.5, max_scale=1.25, seed=7)
    assert torch.equal(again(z), out1)  # same seed, same noise
    plain.load_state_dict(noisy.state_dict())  # noisy has seen z three times
    noisy.eval()
    plain.eval()
    torch.testing.assert_close(noisy(z), plain(z) * 1.125)  # the mean scale


def test_add_noise_copies(mnist):
    net = _net(True)
    before = copy.deepcopy(net.state_dict())
    noisy = landscape.add_noise(net, max_shift=1.0, max_scale=2.0, seed=0)
    with torch.no_grad():
        noisy[0].weight += 1
    for k, val in net.state_dict().items():
        assert torch.equal(val, before[k]), k
    assert torch.equal(noisy[3].weight, net[3].weight)
    kinds = [type(m).__name__ for m in noisy]
    assert kinds.count("NoisyBatchNorm1d") == 3 and "BatchNorm1d" not in kinds


@pytest.mark.parametrize("kw, err", [
    (dict(max_shift=-1.0, max_scale=2.0, seed=0), ValueError),
    (dict(max_shift=1.0, max_scale=0.5, seed=0), ValueError),
    (dict(max_shift="1", max_scale=2.0, seed=0), TypeError),
    (dict(max_shift=1.0, max_scale=2.0, seed=-1), ValueError),
])
def test_noisy_bn_bad_args(kw, err):
    with pytest.raises(err):
        landscape.NoisyBatchNorm1d(10, **kw)


def test_add_noise_needs_bn():
    with pytest.raises(ValueError, match="no BatchNorm1d"):
        landscape.add_noise(_net(False), max_shift=1.0, max_scale=2.0, seed=0)
    with pytest.raises(TypeError, match="Sequential"):
        landscape.add_noise(nn.Linear(3, 3), max_shift=1.0, max_scale=2.0, seed=0)


# ------------------------------------------------------------------ gradient change

def test_grad_difference_against_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    l2, cos = landscape.grad_difference(torch.from_numpy(a), torch.from_numpy(b))
    assert l2 == pytest.approx(np.linalg.norm(a - b), rel=1e-12)
    ref = (a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b)
    assert cos == pytest.approx(ref, rel=1e-12)
    assert landscape.grad_difference(torch.zeros(3), torch.zeros(3)) == (0.0, 1.0)
    with pytest.raises(ValueError, match="same shape"):
        landscape.grad_difference(torch.zeros(3), torch.zeros(4))
    with pytest.raises(TypeError):
        landscape.grad_difference(a, b)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_gradient_change_zero_when_earlier_layers_do_not_move(mnist, batchnorm):
    x, y = mnist
    l2, cos = landscape.gradient_change(_net(batchnorm), x[:60], y[:60], lr=0.0)
    assert l2.shape == cos.shape == (3,)
    np.testing.assert_array_equal(l2, 0.0)
    np.testing.assert_allclose(cos, 1.0, rtol=1e-12)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_gradient_change_against_hand_moved_copy(mnist, batchnorm):
    x, y = mnist[0][:60], mnist[1][:60]
    net = _net(batchnorm)
    net_before = copy.deepcopy(net.state_dict())
    l2, cos = landscape.gradient_change(net, x, y, lr=0.5)
    linear_at = [i for i, m in enumerate(net) if isinstance(m, nn.Linear)]
    names = [n for n, _ in net.named_parameters()]
    for k, i in enumerate(linear_at[1:]):
        w = f"{i}.weight"
        earlier = {n for n in names if int(n.split(".")[0]) < i}
        _, (g,) = _hand_moved_grad(net, x, y, move=set(), step=0.0, wrt=[w])
        _, (g2,) = _hand_moved_grad(net, x, y, move=earlier, step=0.5, wrt=[w])
        g, g2 = g.double().numpy().ravel(), g2.double().numpy().ravel()
        assert l2[k] == pytest.approx(np.linalg.norm(g - g2), rel=1e-4)
        ref_cos = g @ g2 / np.linalg.norm(g) / np.linalg.norm(g2)
        assert cos[k] == pytest.approx(ref_cos, rel=1e-5)
    assert l2.min() > 0  # the earlier layers' step does change G
    for k, val in net.state_dict().items():  # the model is left as it was
        assert torch.equal(val, net_before[k]), k


# ------------------------------------------------------------------ landscape

@pytest.mark.parametrize("batchnorm", [False, True])
def test_loss_along_gradient_against_hand_moved_copy(mnist, batchnorm):
    x, y = mnist[0][:60], mnist[1][:60]
    net = _net(batchnorm, seed=2)
    etas = (0.0, 0.5, 2.0)
    loss, diff, norm = landscape.loss_along_gradient(net, x, y, etas)
    names = [n for n, _ in net.named_parameters()]
    _, g0 = _hand_moved_grad(net, x, y, move=set(), step=0.0, wrt=names)
    with torch.no_grad():
        loss_here = float(F.cross_entropy(net(x), y))
    assert loss[0] == pytest.approx(loss_here, rel=1e-6)
    assert diff[0] == 0.0
    flat0 = torch.cat([g.flatten() for g in g0]).double()
    assert norm == pytest.approx(float(flat0.norm()), rel=1e-5)
    for e, eta in enumerate(etas[1:], start=1):
        loss_e, g_e = _hand_moved_grad(net, x, y, move=set(names), step=eta, wrt=names)
        assert loss[e] == pytest.approx(loss_e, rel=1e-4)
        flat = torch.cat([g.flatten() for g in g_e]).double()
        assert diff[e] == pytest.approx(float((flat0 - flat).norm()), rel=1e-3)
    assert loss[2] != loss[0]


@pytest.mark.parametrize("etas, err", [
    ([], TypeError), ("0.5", TypeError), ((0.1, -0.1), ValueError),
    ((0.1, float("nan")), ValueError),
])
def test_loss_along_gradient_bad_etas(mnist, etas, err):
    x, y = mnist
    with pytest.raises(err):
        landscape.loss_along_gradient(_net(False), x[:10], y[:10], etas)


def test_probes_bad_batches(mnist):
    x, y = mnist
    net = _net(True)
    with pytest.raises(ValueError, match="same length"):
        landscape.gradient_change(net, x[:10], y[:9], lr=0.1)
    with pytest.raises(ValueError, match="at least 2"):
        landscape.gradient_change(net, x[:1], y[:1], lr=0.1)
    with pytest.raises(ValueError, match="784 features"):
        landscape.gradient_change(net, x[:10, :20], y[:10], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        landscape.gradient_change(net, x[:10], y[:10], lr=-0.1)
    with pytest.raises(TypeError, match="integer class labels"):
        landscape.loss_along_gradient(net, x[:10], y[:10].float(), (0.1,))


# ------------------------------------------------------------------ track

def test_track_trains_like_training_train(mnist):
    x, y = mnist
    tr = landscape.track(_net(True), x, y, lr=0.5, steps=20, every=10,
                         etas=(0.0, 1.0), seed=4, progress=False)
    h = training.train(_net(True), x, y, eval_x=x[:50], eval_y=y[:50],
                       probe_x=x[:50], lr=0.5, steps=20, seed=4, record_every=10,
                       progress=False)
    np.testing.assert_allclose(tr.loss, h.loss, rtol=1e-5)
    assert tr.steps.tolist() == [0, 10, 20]
    assert tr.ics_l2.shape == tr.ics_cos.shape == (3, 3)
    assert tr.land_loss.shape == tr.grad_diff.shape == (3, 2)
    np.testing.assert_allclose(tr.land_loss[0, 0], tr.loss[0], rtol=1e-6)
    again = landscape.track(_net(True), x, y, lr=0.5, steps=20, every=10,
                            etas=(0.0, 1.0), seed=4, progress=False)
    np.testing.assert_array_equal(again.ics_l2, tr.ics_l2)


@pytest.mark.parametrize("kw, err", [
    (dict(steps=15, every=10), ValueError), (dict(steps=0, every=10), ValueError),
    (dict(steps=20, every=10, batch_size=1), ValueError),
    (dict(steps=20, every=10, lr=0.0), ValueError),
    (dict(steps=20, every=10, seed=1.5), TypeError),
])
def test_track_bad_args(mnist, kw, err):
    x, y = mnist
    kw = dict(lr=0.5, etas=(0.0,), seed=0, progress=False) | kw
    with pytest.raises(err):
        landscape.track(_net(False), x, y, **kw)


# ------------------------------------------------------------------ added for issue 9

def test_noisy_bn_per_example_noise():
    z = torch.from_numpy(np.random.default_rng(1).normal(2, 3, (4000, 50))).float()
    plain = nn.BatchNorm1d(50)
    noisy = landscape.NoisyBatchNorm1d(50, max_shift=1.0, max_scale=2.0, seed=5,
                                       noise_std=1.0)
    with torch.no_grad():
        out = noisy(z)
        clean = plain(z)
    torch.testing.assert_close(noisy.last_clean, clean)
    resid = out - clean * noisy.last_scale - noisy.last_shift  # std_k * xi_ik
    assert ((noisy.last_std >= 0) & (noisy.last_std <= 1)).all()
    # per example: independent N(0, std_k^2) in each column (4000 rows: 5 % error)
    np.testing.assert_allclose(resid.std(0).numpy(), noisy.last_std.numpy(), rtol=0.08,
                               atol=0.01)
    assert resid.mean(0).abs().max() < 0.1
    first_std = noisy.last_std.clone()
    with torch.no_grad():
        noisy(z)
    assert not torch.equal(noisy.last_std, first_std)  # moments redrawn every pass
    noisy.eval()
    plain.load_state_dict(noisy.state_dict())
    plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(noisy(z), plain(z) * 1.5)


def test_bn_output_recorder_against_hand_computed(mnist):
    x, y = mnist
    net = landscape.add_noise(_net(True), max_shift=1.0, max_scale=2.0, seed=0,
                              noise_std=0.5)
    probe = x[:100]
    with landscape.BNOutputRecorder(net, n_rows=100) as rec:
        training.train(net, x, y, eval_x=x[:50], eval_y=y[:50], probe_x=probe, lr=0.5,
                       steps=20, seed=0, record_every=10, progress=False)
    assert [m.shape for m in rec.mean] == [(3, 100)] * 3
    # oracle: the last checkpoint by hand, BN output of layer 1 (no noise before it)
    bn1 = net[1]
    with torch.no_grad():
        wu = net[0](probe).double()
        x_hat = (wu - wu.mean(0)) / torch.sqrt(wu.var(0, correction=0) + bn1.eps)
        want = (bn1.weight.double() * x_hat + bn1.bias.double())
    np.testing.assert_allclose(rec.mean[0][-1], want.mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(rec.std[0][-1], want.std(0, correction=0).numpy(),
                               rtol=1e-4, atol=1e-5)
    d_mu, d_s = rec.drift()
    np.testing.assert_allclose(d_mu[0], np.abs(np.diff(rec.mean[0], axis=0)).mean())
    assert d_mu.shape == d_s.shape == (3,)
    with pytest.raises(ValueError, match="no BatchNorm1d"):
        landscape.BNOutputRecorder(_net(False), n_rows=10)


def test_track_relative_ics_and_several_batches(mnist):
    x, y = mnist
    tr = landscape.track(_net(False), x, y, lr=0.5, steps=20, every=10,
                         etas=(0.5,), seed=2, n_batches=3, progress=False)
    assert tr.ics_rel.shape == (3, 3) and (tr.ics_rel > 0).all()
    one = landscape.track(_net(False), x, y, lr=0.5, steps=20, every=10,
                          etas=(0.5,), seed=2, n_batches=1, progress=False)
    np.testing.assert_array_equal(one.loss, tr.loss)  # same training either way
    # n_batches=1: ics_rel is ||G - G'|| / ||G|| on the update's batch (hand oracle)
    fresh = _net(False)
    gen = torch.Generator().manual_seed(2)
    idx = torch.randperm(len(x), generator=gen)[:60]
    _, (g,) = _hand_moved_grad(fresh, x[idx], y[idx], move=set(), step=0.0,
                               wrt=["2.weight"])
    _, (g2,) = _hand_moved_grad(fresh, x[idx], y[idx], move={"0.weight", "0.bias"},
                                step=0.5, wrt=["2.weight"])
    want = float((g - g2).double().norm() / g.double().norm())
    np.testing.assert_allclose(one.ics_rel[0, 0], want, rtol=1e-4)
    with torch.no_grad():
        want_loss = float(F.cross_entropy(fresh(x[idx]), y[idx]))
    np.testing.assert_allclose(one.loss_now[0], want_loss, rtol=1e-6)


def test_track_progress_bar_ends_full(mnist, capsys):
    x, y = mnist
    landscape.track(_net(False), x, y, lr=0.5, steps=20, every=10, etas=(0.5,),
                    seed=0, progress=True, desc="bar")
    err = capsys.readouterr().err
    assert "20/20" in err and "21" not in err.split("bar")[-1]
