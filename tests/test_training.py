"""models.build_mlp and training.train against independent oracles on real MNIST.

Oracles: a numpy float64 forward pass (hidden pre-activations, BN via batch statistics),
np.percentile / np.histogram on activations captured by our own hooks, and
torch.optim.SGD on the same batches for the update rule.
"""

import contextlib
import copy
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from bn_helpers import models, training
from bn_helpers.data import load_mnist


@pytest.fixture(scope="module")
def mnist():
    x, y = load_mnist("train", n=600, seed=0)
    xt, yt = load_mnist("test", n=200, seed=1)
    return x, y, xt, yt


def _train(mnist, *, batchnorm, seed=0, model_seed=0, steps=30, **kw):
    x, y, xt, yt = mnist
    net = models.build_mlp(batchnorm=batchnorm, init_std=0.1, seed=model_seed)
    kw = dict(eval_x=xt, eval_y=yt, probe_x=xt[:100], lr=0.5, steps=steps, seed=seed,
              record_every=10, progress=False) | kw
    return net, training.train(net, x, y, **kw)


@contextlib.contextmanager
def _one_thread():
    """torch on one thread, as train() runs it: same kernels, same float32 rounding."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _fields_equal(a: training.History, b: training.History) -> bool:
    for f in dataclasses.fields(training.History):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(va, tuple):
            if not all(np.array_equal(p, q) for p, q in zip(va, vb, strict=True)):
                return False
        elif isinstance(va, np.ndarray):
            if not np.array_equal(va, vb):
                return False
        elif va != vb:
            return False
    return True


# ------------------------------------------------------------------------- models


@pytest.mark.parametrize("batchnorm", [False, True])
def test_mlp_shapes(batchnorm):
    net = models.build_mlp(batchnorm=batchnorm, init_std=0.1, seed=0)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(100, 784), (100, 100),
                                                        (100, 100), (10, 100)]
    assert net(torch.zeros(5, 784)).shape == (5, 10)
    small = models.build_mlp((20, 7, 3), batchnorm=batchnorm, init_std=0.1, seed=0)
    assert small(torch.zeros(4, 20)).shape == (4, 3)


def test_bn_placement_and_biases():
    names = [type(m).__name__ for m in models.build_mlp(batchnorm=True, init_std=0.1,
                                                         seed=0)]
    assert names == ["Linear", "BatchNorm1d", "Sigmoid"] * 3 + ["Linear"]
    bn_net = models.build_mlp(batchnorm=True, init_std=0.1, seed=0)
    hidden = [m for m in bn_net if isinstance(m, nn.Linear)][:-1]
    assert all(m.bias is None for m in hidden)  # BN's beta plays the bias (Sec. 3.2)
    assert bn_net[-1].bias is not None
    assert all(m.num_features == 100 for m in bn_net if isinstance(m, nn.BatchNorm1d))
    plain = [type(m).__name__ for m in models.build_mlp(init_std=0.1, seed=0)]
    assert plain == ["Linear", "Sigmoid"] * 3 + ["Linear"]
    tanh = models.build_mlp(activation="tanh", init_std=0.1, seed=0)
    assert len(models.activation_modules(tanh)) == 3
    assert all(isinstance(m, nn.Tanh) for m in models.activation_modules(tanh))


def test_init_is_small_gaussian_and_seeded():
    a = models.build_mlp(init_std=0.05, seed=3)
    w = a[0].weight.detach().numpy()
    assert abs(w.std() - 0.05) < 0.002 and abs(w.mean()) < 0.002
    assert all(not m.bias.detach().any() for m in a if isinstance(m, nn.Linear))
    b = models.build_mlp(init_std=0.05, seed=3)
    c = models.build_mlp(init_std=0.05, seed=4)
    assert torch.equal(a[0].weight, b[0].weight)
    assert not torch.equal(a[0].weight, c[0].weight)


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(init_std=-0.1, seed=0), ValueError, "init_std"),
    (dict(init_std="0.1", seed=0), TypeError, "init_std"),
    (dict(init_std=0.1, seed=0.5), TypeError, "seed"),
    (dict(init_std=0.1, seed=True), TypeError, "seed"),
    (dict(init_std=0.1, seed=-1), ValueError, "seed"),
    (dict(init_std=0.1, seed=0, activation="softplus"), ValueError, "activation"),
    (dict(init_std=0.1, seed=0, batchnorm=1), TypeError, "batchnorm"),
    (dict(sizes=(784,), init_std=0.1, seed=0), ValueError, "sizes"),
    (dict(sizes=(784, 0, 10), init_std=0.1, seed=0), ValueError, "sizes[1]"),
    (dict(sizes="784-10", init_std=0.1, seed=0), TypeError, "sizes"),
])
def test_build_mlp_bad_arguments(kwargs, exc, word):
    with pytest.raises(exc, match=word.replace("[", r"\[").replace("]", r"\]")):
        models.build_mlp(**kwargs)


# ------------------------------------------------------------------------- recording


def _numpy_hidden_inputs(net, x):
    """Float64 oracle: the input of every hidden sigmoid, BN with batch statistics."""
    a, out = x.astype(np.float64), []
    for m in net:
        if isinstance(m, nn.Linear):
            a = a @ m.weight.detach().double().numpy().T
            if m.bias is not None:
                a = a + m.bias.detach().double().numpy()
        elif isinstance(m, nn.BatchNorm1d):
            mu, var = a.mean(axis=0), a.var(axis=0)  # biased variance, as BN trains
            a = (a - mu) / np.sqrt(var + m.eps) * m.weight.detach().double().numpy() \
                + m.bias.detach().double().numpy()
        elif isinstance(m, nn.Sigmoid):
            out.append(a)
            a = 1.0 / (1.0 + np.exp(-a))
    return out


@pytest.mark.parametrize("batchnorm", [False, True])
def test_activation_inputs_match_numpy_forward(mnist, batchnorm):
    net, _ = _train(mnist, batchnorm=batchnorm, steps=20)
    probe = mnist[2][:100]
    buffers = {k: b.clone() for k, b in net.named_buffers()}
    net.eval()
    got = training.activation_inputs(net, probe)
    assert not net.training  # mode restored
    assert all(torch.equal(b, buffers[k]) for k, b in net.named_buffers())  # stats kept
    want = _numpy_hidden_inputs(net, probe)
    assert len(got) == len(want) == 3
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_recorded_statistics_match_numpy(mnist, batchnorm):
    net, hist = _train(mnist, batchnorm=batchnorm)
    probe = mnist[2][:100]
    # our own hooks on a copy (train mode, as recording uses BN's batch statistics)
    twin, acts = copy.deepcopy(net).train(), []
    for m in twin:
        if isinstance(m, nn.Sigmoid):
            m.register_forward_hook(lambda _m, inp, _o: acts.append(inp[0].numpy()))
    with _one_thread(), torch.no_grad():
        twin(torch.from_numpy(probe))
    lo, hi = hist.hist_edges[0], hist.hist_edges[-1]
    for i, a in enumerate(acts):
        a64 = a.astype(np.float64)
        np.testing.assert_allclose(hist.percentiles[i][-1],
                                   np.percentile(a64, training.PERCENTILES, axis=0),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(hist.mean[i][-1], a64.mean(axis=0), rtol=1e-10)
        np.testing.assert_allclose(hist.std[i][-1], a64.std(axis=0), rtol=1e-10)
        counts, _ = np.histogram(np.clip(a, lo, hi), bins=hist.hist_edges)
        assert hist.hist_counts[-1, i].sum() == a.size
        assert np.abs(hist.hist_counts[-1, i] - counts).sum() <= 2  # bin-edge rounding


def test_history_shapes_and_config(mnist):
    _, h = _train(mnist, batchnorm=True, steps=30)
    assert h.steps.tolist() == [0, 10, 20, 30]
    assert h.loss.shape == (30,) and h.test_accuracy.shape == (4,)
    assert h.n_layers == 3
    assert all(p.shape == (4, 3, 100) for p in h.percentiles)
    assert all(m.shape == (4, 100) for m in h.mean + h.std)
    assert h.hist_counts.shape == (4, 3, 100) and h.hist_edges.shape == (101,)
    assert h.config["batchnorm"] is True and h.config["seed"] == 0
    assert np.all(np.diff(h.percentiles[0], axis=1) >= 0)  # 15th <= 50th <= 85th


# ------------------------------------------------------------------------- training


@pytest.mark.parametrize("batchnorm", [False, True])
def test_same_seed_same_history_other_seed_differs(mnist, batchnorm):
    _, a = _train(mnist, batchnorm=batchnorm)
    _, b = _train(mnist, batchnorm=batchnorm)
    _, c = _train(mnist, batchnorm=batchnorm, seed=1)  # other batch order, same init
    assert _fields_equal(a, b)
    assert not _fields_equal(a, c)
    assert not np.array_equal(a.loss, c.loss)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_update_matches_torch_sgd(mnist, batchnorm):
    """Our loop = torch.optim.SGD on the batches of a seeded per-epoch permutation."""
    x, y, *_ = mnist
    net, hist = _train(mnist, batchnorm=batchnorm, steps=20, batch_size=60)
    oracle = models.build_mlp(batchnorm=batchnorm, init_std=0.1, seed=0)
    opt = torch.optim.SGD(oracle.parameters(), lr=0.5)
    gen = torch.Generator().manual_seed(0)
    xs, ys, losses = torch.from_numpy(x), torch.from_numpy(y), []
    with _one_thread():
        for step in range(20):
            slot = step % (len(x) // 60)
            if slot == 0:
                order = torch.randperm(len(x), generator=gen)
            idx = order[slot * 60:(slot + 1) * 60]
            loss = nn.functional.cross_entropy(oracle(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    np.testing.assert_allclose(hist.loss, losses, rtol=1e-5)
    for p, q in zip(net.parameters(), oracle.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    for name, b in oracle.named_buffers():
        torch.testing.assert_close(dict(net.named_buffers())[name], b)


def test_training_learns(mnist):
    _, h = _train(mnist, batchnorm=True, steps=200, record_every=100)
    assert h.loss[-20:].mean() < 0.7 * h.loss[:20].mean()
    assert h.test_accuracy[-1] > h.test_accuracy[0] + 0.2


def test_threads_restored(mnist):
    before = torch.get_num_threads()
    _train(mnist, batchnorm=False, steps=10, num_threads=1)
    assert torch.get_num_threads() == before


# ------------------------------------------------------------------------- drift


def _synthetic_history(means, stds):
    c = means[0].shape[0]
    return training.History(
        steps=np.arange(c) * 10, loss=np.zeros(10 * (c - 1)), test_accuracy=np.zeros(c),
        percentiles=tuple(np.zeros((c, 3, m.shape[1])) for m in means),
        mean=tuple(means), std=tuple(stds), hist_counts=np.zeros((c, len(means), 4)),
        hist_edges=np.linspace(-1, 1, 5), config={})


def test_drift_on_known_values():
    # layer 1: unit k moves by (k + 1) each interval -> mean drift (1 + 2 + 3) / 3 = 2
    mu1 = np.arange(4)[:, None] * np.array([1.0, -2.0, 3.0])
    # layer 2: alternates 0, 1, 0 -> |delta| = 1 each interval
    mu2 = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    s = np.ones((4, 3)) * np.array([[1.0], [1.5], [1.5], [0.5]])  # |ds| = .5, 0, 1
    h = _synthetic_history([mu1, mu2], [s, s])
    md, sd = training.activation_drift(h)
    np.testing.assert_allclose(md, [2.0, 1.0])
    np.testing.assert_allclose(sd, [0.5, 0.5])
    per_mean, per_std = training.drift_per_interval(h)
    assert per_mean.shape == (2, 3)
    np.testing.assert_allclose(per_std[0], [0.5, 0.0, 1.0])
    table = training.drift_table({"toy": h})
    assert "2.0000" in table and "0.5000" in table and len(table.splitlines()) == 3


def test_drift_bad_arguments():
    with pytest.raises(TypeError, match="history"):
        training.activation_drift({"steps": [0, 1]})
    one = _synthetic_history([np.zeros((1, 2))], [np.zeros((1, 2))])
    with pytest.raises(ValueError, match="2 checkpoints"):
        training.activation_drift(one)
    with pytest.raises(TypeError, match="histories"):
        training.drift_table([one])


# ------------------------------------------------------------------------- bad args


@pytest.mark.parametrize("kw, exc, word", [
    (dict(steps=25), ValueError, "steps"),
    (dict(steps=0), ValueError, "steps"),
    (dict(lr=0.0), ValueError, "lr"),
    (dict(lr="0.1"), TypeError, "lr"),
    (dict(seed=None), TypeError, "seed"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(batch_size=1), ValueError, "batch_size"),
    (dict(record_every=0), ValueError, "record_every"),
    (dict(hist_range=(3, -3)), ValueError, "hist_range"),
    (dict(probe_x=np.zeros((1, 784), np.float32)), ValueError, "probe_x"),
    (dict(probe_x=np.zeros((5, 10), np.float32)), ValueError, "probe_x"),
    (dict(eval_y=np.zeros(3, np.int64)), ValueError, "eval_x and eval_y"),
    (dict(eval_x=[[0.0] * 784]), TypeError, "eval_x"),
    (dict(eval_y=np.zeros(200, np.float32)), TypeError, "eval_y"),
])
def test_train_bad_arguments(mnist, kw, exc, word):
    with pytest.raises(exc, match=word):
        _train(mnist, batchnorm=False, **kw)


def test_train_bad_data_and_model(mnist):
    x, y, xt, yt = mnist
    net = models.build_mlp(init_std=0.1, seed=0)
    common = dict(eval_x=xt, eval_y=yt, probe_x=xt[:10], lr=0.1, steps=10, seed=0,
                  record_every=10, progress=False)
    with pytest.raises(TypeError, match="train_x"):
        training.train(net, (x * 255).astype(np.uint8), y, **common)
    with pytest.raises(ValueError, match="train_x"):
        training.train(net, x[:, :100], y, **common)
    with pytest.raises(TypeError, match="model"):
        training.train("mlp", x, y, **common)
    with pytest.raises(TypeError, match="model"):
        models.activation_modules(None)
    with pytest.raises(ValueError, match="no sigmoid"):
        training.activation_inputs(nn.Linear(784, 3), xt[:5])


def test_build_mlp_leaves_the_global_torch_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    models.build_mlp(batchnorm=True, init_std=0.1, seed=0)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())
