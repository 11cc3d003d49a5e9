"""torch_bridge.NumpyBatchNorm1d against torch.nn.BatchNorm1d, and build_mlp's bn_impl.

Oracles: torch's own layer (outputs, autograd gradients, running buffers, eval mode),
torch.autograd.gradcheck (finite differences) and a torch-BN net trained alike.
"""

import numpy as np
import pytest
import torch
from torch import nn

from bn_helpers import batchnorm as bn
from bn_helpers import models, training
from bn_helpers.data import load_mnist
from bn_helpers.torch_bridge import NumpyBatchNorm1d, learner_bn_status

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12),
       torch.float32: dict(rtol=1e-4, atol=1e-5)}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_numpy_layer_matches_torch_layer(dtype, momentum):
    gen = torch.Generator().manual_seed(0)
    ours = NumpyBatchNorm1d(6, momentum=momentum).to(dtype)
    ref = nn.BatchNorm1d(6, momentum=momentum).to(dtype)
    with torch.no_grad():
        w, b = torch.randn(6, generator=gen), torch.randn(6, generator=gen)
        for layer in (ours, ref):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    for mode in ["train"] * 5 + ["eval", "eval"]:
        if mode == "eval":
            ours.eval()
            ref.eval()
        x = (torch.randn(24, 6, generator=gen) * 3 + 1).to(dtype)
        dout = torch.randn(24, 6, generator=gen).to(dtype)
        xs = [x.clone().requires_grad_(True) for _ in range(2)]
        outs = [layer(xi) for layer, xi in zip((ours, ref), xs, strict=True)]
        for layer, out in zip((ours, ref), outs, strict=True):
            layer.zero_grad()
            out.backward(dout)
        assert outs[0].dtype == dtype
        torch.testing.assert_close(outs[0], outs[1], **TOL[dtype])
        torch.testing.assert_close(xs[0].grad, xs[1].grad, **TOL[dtype])
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad, **TOL[dtype])
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, **TOL[dtype])
        torch.testing.assert_close(ours.running_mean, ref.running_mean, **TOL[dtype])
        torch.testing.assert_close(ours.running_var, ref.running_var, **TOL[dtype])
        assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked)


def test_numpy_layer_is_a_torch_layer():
    layer = NumpyBatchNorm1d(4)
    assert isinstance(layer, nn.BatchNorm1d)
    assert list(layer.state_dict()) == list(nn.BatchNorm1d(4).state_dict())
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.double().running_mean.dtype == torch.float64
    ref = nn.BatchNorm1d(4)
    ref(torch.randn(8, 4))
    layer.float().load_state_dict(ref.state_dict())
    torch.testing.assert_close(layer.running_var, ref.running_var)


def test_gradcheck_through_the_numpy_layer():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), NumpyBatchNorm1d(4), nn.Sigmoid(),
                        nn.Linear(4, 3)).double()
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,))


def test_functions_are_looked_up_at_call_time(monkeypatch):
    calls = []
    original = bn.batchnorm_backward_alt

    def spy(dout, cache):
        calls.append(dout.shape)
        return original(dout, cache)

    monkeypatch.setattr(bn, "batchnorm_backward_alt", spy)
    layer = NumpyBatchNorm1d(3)
    layer(torch.randn(5, 3, requires_grad=True)).sum().backward()
    assert calls == [(5, 3)]


def test_learner_status_and_auto(monkeypatch, capsys):
    assert learner_bn_status() is None
    net = models.build_mlp((6, 5, 3), batchnorm=True, init_std=0.1, seed=0,
                           bn_impl="auto")
    assert type(net[1]) is NumpyBatchNorm1d

    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise 4.2: batchnorm_inference: implement it")

    monkeypatch.setattr(bn, "batchnorm_inference", stub)
    assert "Exercise 4.2" in learner_bn_status()
    net = models.build_mlp((6, 5, 3), batchnorm=True, init_std=0.1, seed=0,
                           bn_impl="auto")
    assert type(net[1]) is nn.BatchNorm1d
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "Exercise 4.2" in out


def test_bn_impl_default_is_torch_and_bad_value_is_named():
    net = models.build_mlp((6, 5, 3), batchnorm=True, init_std=0.1, seed=0)
    assert type(net[1]) is nn.BatchNorm1d
    with pytest.raises(ValueError, match="bn_impl"):
        models.build_mlp((6, 5, 3), batchnorm=True, init_std=0.1, seed=0,
                         bn_impl="mine")


def test_mlp_with_numpy_bn_trains_like_torch_bn():
    """Same seed, same batches: the loss curves agree to float32 rounding (1e-4)."""
    x, y = load_mnist("train", n=1200, seed=0)
    xt, yt = load_mnist("test", n=200, seed=1)
    nets, hists = {}, {}
    for impl in ("torch", "numpy"):
        nets[impl] = models.build_mlp(batchnorm=True, init_std=0.1, seed=0,
                                      bn_impl=impl)
        hists[impl] = training.train(nets[impl], x, y, eval_x=xt, eval_y=yt,
                                     probe_x=xt[:100], lr=0.5, steps=200, seed=0,
                                     record_every=100, progress=False)
    assert type(nets["numpy"][1]) is NumpyBatchNorm1d
    assert hists["numpy"].config["batchnorm"] is True
    assert np.abs(hists["numpy"].loss - hists["torch"].loss).max() < 1e-4
    assert hists["torch"].loss[-1] < 0.5 * hists["torch"].loss[0]  # it did train
    for a, b in zip(nets["numpy"].state_dict().values(),
                    nets["torch"].state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
