"""bn_helpers.batch_noise against independent oracles on real MNIST.

Oracles: torch on the same sampled indices (batch statistics), torch's own BatchNorm1d
forward with the statistics computed by hand (population statistics), a hand-written
train-mode loop (train-mode accuracy), and direct matrix products (BN inputs).
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from bn_helpers import batch_noise, models, training
from bn_helpers.data import load_mnist


@pytest.fixture(scope="module")
def mnist():
    x, y = load_mnist("train", n=1200, seed=0)
    xt, yt = load_mnist("test", n=300, seed=1)
    return x, y, xt, yt


@pytest.fixture(scope="module")
def trained(mnist):
    """A BN net after 60 SGD steps: running statistics that differ from the defaults."""
    x, y, xt, yt = mnist
    net = models.build_mlp(batchnorm=True, init_std=0.1, seed=0)
    training.train(net, x, y, eval_x=xt, eval_y=yt, probe_x=xt[:50], lr=0.5, steps=60,
                   seed=0, batch_size=20, record_every=60, progress=False)
    return net


@pytest.fixture(scope="module")
def hidden(mnist, trained):
    """Real first-layer BN inputs (1200, 100), float64."""
    with torch.no_grad():
        return trained[0](torch.from_numpy(mnist[0])).double().numpy()


@pytest.mark.parametrize("m", [2, 7, 300])
def test_batch_statistics_match_torch_on_same_indices(hidden, m):
    n_batches = 500  # m = 300: 150,000 rows, more than one gathering chunk
    mu_B, var_B = batch_noise.batch_statistics(hidden, m, n_batches,
                                               np.random.default_rng(3))
    idx = torch.from_numpy(np.random.default_rng(3).integers(0, len(hidden),
                                                             size=(n_batches, m)))
    rows = torch.from_numpy(hidden)[idx]  # (n_batches, m, 100)
    np.testing.assert_allclose(mu_B, rows.mean(dim=1).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var_B, rows.var(dim=1, correction=0).numpy(),
                               rtol=1e-10, atol=1e-12)


def test_batch_statistics_noise_follows_sigma_over_sqrt_m(hidden):
    # 4000 batches: relative standard error of a std ~ 1.2%; 6% is 5 of them
    mu_B, _ = batch_noise.batch_statistics(hidden[:, :10], 16, 4000,
                                           np.random.default_rng(0))
    np.testing.assert_allclose(mu_B.std(axis=0), hidden[:, :10].std(axis=0) / 4,
                               rtol=0.06)


def test_batch_statistics_float32_input_gives_float64(hidden):
    mu32, _ = batch_noise.batch_statistics(hidden.astype(np.float32), 4, 10,
                                           np.random.default_rng(0))
    mu64, _ = batch_noise.batch_statistics(hidden, 4, 10, np.random.default_rng(0))
    assert mu32.dtype == np.float64
    np.testing.assert_allclose(mu32, mu64, rtol=1e-5, atol=1e-5)


def test_eval_accuracy_matches_manual_and_restores_mode(mnist, trained):
    _, _, xt, yt = mnist
    net = copy.deepcopy(trained).train()
    acc = batch_noise.eval_accuracy(net, xt, yt)
    assert net.training, "the mode must be restored"
    with torch.no_grad():
        manual = (trained.eval()(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean()
    assert acc == pytest.approx(manual, abs=1e-12)


def test_train_mode_accuracy_matches_manual_loop_and_keeps_net(mnist, trained):
    _, _, xt, yt = mnist
    before = {k: t.clone() for k, t in trained.state_dict().items()}
    acc = batch_noise.train_mode_accuracy(trained, xt, yt, batch_size=7, seed=5)
    for k, t in trained.state_dict().items():
        assert torch.equal(t, before[k]), f"{k} changed"
    order = torch.randperm(len(xt), generator=torch.Generator().manual_seed(5))
    order = order[:len(xt) // 7 * 7].numpy()
    correct = 0
    with torch.no_grad():
        for b in order.reshape(-1, 7):
            # BN with the batch's own statistics, via torch.nn.functional directly
            h = torch.from_numpy(xt[b])
            for mod in trained:
                if isinstance(mod, nn.BatchNorm1d):
                    h = nn.functional.batch_norm(h, None, None, mod.weight, mod.bias,
                                                 training=True, eps=mod.eps)
                else:
                    h = mod(h)
            correct += int((h.argmax(1).numpy() == yt[b]).sum())
    assert acc == pytest.approx(correct / len(order), abs=1e-12)


def test_train_mode_accuracy_is_not_eval_accuracy_for_tiny_batches(mnist, trained):
    _, _, xt, yt = mnist
    tiny = batch_noise.train_mode_accuracy(trained, xt, yt, batch_size=2, seed=0)
    assert tiny != batch_noise.eval_accuracy(trained, xt, yt)


def test_with_population_stats_equals_hand_computed_statistics(mnist, trained):
    x = mnist[0]
    precise = batch_noise.with_population_stats(trained, x, batch_size=400)
    assert not precise.training
    assert precise is not trained
    # layer 1's input does not depend on other BN layers: its statistics are exact
    with torch.no_grad():
        h = trained[0](torch.from_numpy(x)).double().reshape(3, 400, -1)
    np.testing.assert_allclose(precise[1].running_mean.numpy(),
                               h.mean(dim=1).mean(dim=0).numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(precise[1].running_var.numpy(),
                               h.var(dim=1, correction=1).mean(dim=0).numpy(),
                               rtol=1e-5, atol=1e-6)
    assert not torch.allclose(precise[1].running_var, trained[1].running_var)


def test_bn_inputs_are_eval_mode_layer_inputs(mnist, trained):
    xt = mnist[2]
    inputs = batch_noise.bn_inputs(trained, xt)
    assert len(inputs) == 3 and all(a.shape == (len(xt), 100) for a in inputs)
    net = copy.deepcopy(trained).eval()
    with torch.no_grad():
        h1 = net[0](torch.from_numpy(xt))
        h2 = net[3](net[2](net[1](h1)))  # Linear -> BN -> Sigmoid -> Linear
    np.testing.assert_allclose(inputs[0], h1.double().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(inputs[1], h2.double().numpy(), rtol=1e-6, atol=1e-6)
    assert not any(mod._forward_pre_hooks for mod in trained.modules()), "hooks left"


@pytest.mark.parametrize(("call", "error", "words"), [
    (lambda h: batch_noise.batch_statistics(h, 1, 10, np.random.default_rng(0)),
     ValueError, "m must be >= 2"),
    (lambda h: batch_noise.batch_statistics(h, 4, 10, 0), TypeError, "rng"),
    (lambda h: batch_noise.batch_statistics(h[0], 4, 10, np.random.default_rng(0)),
     ValueError, "x must be 2-D"),
    (lambda h: batch_noise.batch_statistics(h, 4, 0, np.random.default_rng(0)),
     ValueError, "n_batches"),
])
def test_batch_statistics_rejects_bad_arguments(hidden, call, error, words):
    with pytest.raises(error, match=words):
        call(hidden)


def test_network_functions_reject_bad_arguments(mnist, trained):
    _, _, xt, yt = mnist
    no_bn = models.build_mlp(batchnorm=False, init_std=0.1, seed=0)
    with pytest.raises(ValueError, match="no BatchNorm1d"):
        batch_noise.with_population_stats(no_bn, xt, batch_size=100)
    with pytest.raises(ValueError, match="no BatchNorm1d"):
        batch_noise.bn_inputs(no_bn, xt)
    with pytest.raises(TypeError, match="net must be a torch.nn.Module"):
        batch_noise.eval_accuracy("net", xt, yt)
    with pytest.raises(ValueError, match="batch_size must be in"):
        batch_noise.train_mode_accuracy(trained, xt, yt, batch_size=1, seed=0)
    with pytest.raises(ValueError, match="y must be"):
        batch_noise.eval_accuracy(trained, xt, yt[:-1])
