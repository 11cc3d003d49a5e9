"""bn.BatchNorm1d / BatchNorm2d against torch 2.13's layers: the whole contract of
issue 11 (momentum=None, affine=False, track_running_stats=False, (N, C, L) input, the
reset methods, parameters(), state_dict round trips, in-place buffers) and its bugs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bn_helpers import batchnorm as bn
from bn_helpers import gradcheck as gc

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-5)}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}
LAYERS = [(bn.BatchNorm1d, torch.nn.BatchNorm1d, (16, 5)),
          (bn.BatchNorm1d, torch.nn.BatchNorm1d, (8, 5, 7)),  # (N, C, L)
          (bn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 5, 3, 3))]
IDS = ["1d (N, C)", "1d (N, C, L)", "2d (N, C, H, W)"]


def _pair(ours_cls, torch_cls, c, dtype, seed=0, **kw):
    ours = ours_cls(c, dtype=dtype, **kw)
    ref = torch_cls(c, **kw).to(TORCH_DTYPE[dtype])
    if ours.affine:
        r = np.random.default_rng(seed)
        gamma = r.normal(1, 0.3, c).astype(dtype)
        beta = r.normal(0, 0.3, c).astype(dtype)
        ours.gamma[...], ours.beta[...] = gamma, beta
        with torch.no_grad():
            ref.weight.copy_(torch.from_numpy(gamma))
            ref.bias.copy_(torch.from_numpy(beta))
    return ours, ref


def _step(ours, ref, x, dout, dtype):
    """One forward and backward through both; compare everything torch exposes."""
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    if ref.weight is not None:
        ref.zero_grad()
    yt = ref(xt)
    yt.backward(torch.from_numpy(dout))
    y = ours.forward(x)
    dx = ours.backward(dout)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL[dtype])
    if ref.weight is not None:
        np.testing.assert_allclose(ours.dgamma, ref.weight.grad.numpy(), **TOL[dtype])
        np.testing.assert_allclose(ours.dbeta, ref.bias.grad.numpy(), **TOL[dtype])
    else:
        assert ours.dgamma is None and ours.dbeta is None
    if ref.running_mean is None:
        assert ours.running_mean is None and ours.running_var is None
    else:
        np.testing.assert_allclose(ours.running_mean, ref.running_mean.numpy(),
                                   **TOL[dtype])
        np.testing.assert_allclose(ours.running_var, ref.running_var.numpy(),
                                   **TOL[dtype])
        assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked)


def _run(ours, ref, shape, dtype, steps=4, seed=1):
    r = np.random.default_rng(seed)
    for mode in ["train"] * steps + ["eval"]:
        if mode == "eval":
            ours.eval()
            ref.eval()
        x = r.normal(r.uniform(-2, 2), r.uniform(0.5, 3), shape).astype(dtype)
        _step(ours, ref, x, r.normal(size=shape).astype(dtype), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ours_cls,torch_cls,shape", LAYERS, ids=IDS)
@pytest.mark.parametrize("kw", [dict(momentum=None), dict(affine=False),
                                dict(track_running_stats=False),
                                dict(momentum=0.3, affine=False)],
                         ids=["momentum None", "affine False", "no running stats",
                              "momentum 0.3 affine False"])
def test_layer_options_match_torch(ours_cls, torch_cls, shape, dtype, kw):
    ours, ref = _pair(ours_cls, torch_cls, shape[1], dtype, **kw)
    _run(ours, ref, shape, dtype)


def test_momentum_none_is_the_cumulative_average():
    """After k batches, running_mean is the plain mean of the k batch means."""
    r = np.random.default_rng(3)
    layer = bn.BatchNorm1d(4, momentum=None)
    batches = [r.normal(i, 1 + i, (10, 4)) for i in range(5)]
    for b in batches:
        layer.forward(b)
    np.testing.assert_allclose(layer.running_mean,
                               np.mean([b.mean(0) for b in batches], axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(layer.running_var,
                               np.mean([b.var(0, ddof=1) for b in batches], axis=0),
                               rtol=1e-12)


@pytest.mark.parametrize("ours_cls,torch_cls,shape", LAYERS, ids=IDS)
def test_parameters_and_state_dict_use_torchs_names(ours_cls, torch_cls, shape):
    for kw in (dict(), dict(affine=False), dict(track_running_stats=False)):
        ours, ref = _pair(ours_cls, torch_cls, shape[1], np.float64, **kw)
        assert list(ours.state_dict()) == list(ref.state_dict())
        assert len(ours.parameters()) == len(list(ref.parameters()))
    ours = ours_cls(shape[1])
    assert ours.parameters()[0] is ours.gamma and ours.parameters()[1] is ours.beta
    assert ours.weight is ours.gamma and ours.bias is ours.beta


@pytest.mark.parametrize("ours_cls,torch_cls,shape", LAYERS, ids=IDS)
def test_state_dict_round_trip_with_torch(ours_cls, torch_cls, shape):
    c = shape[1]
    r = np.random.default_rng(5)
    ref = torch_cls(c).double()
    with torch.no_grad():
        ref.weight.normal_()
        ref.bias.normal_()
    for _ in range(3):
        ref(torch.from_numpy(r.normal(2, 3, shape)))
    ours = ours_cls(c)
    ours.load_state_dict(ref.state_dict())  # torch tensors load as they are
    for k, a in ours.state_dict().items():
        np.testing.assert_array_equal(a, ref.state_dict()[k].numpy())
    ours.eval()
    ref.eval()
    x = r.normal(size=shape)
    np.testing.assert_allclose(ours.forward(x), ref(torch.from_numpy(x)).detach(),
                               rtol=1e-12, atol=1e-12)
    # and back: a fresh torch layer from the numpy layer's state
    ours.forward(x)
    ours.train()
    ours.forward(x)  # one more training step, so the states differ from ref's
    back = torch_cls(c).double()
    back.load_state_dict({k: torch.as_tensor(a) for k, a in ours.state_dict().items()})
    for k, a in ours.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k].numpy(), a)
    assert int(back.num_batches_tracked) == 4


def test_state_dict_holds_the_arrays_and_loads_in_place():
    layer = bn.BatchNorm1d(3)
    sd = layer.state_dict()
    assert sd["running_mean"] is layer.running_mean and sd["weight"] is layer.gamma
    kept = layer.running_var
    layer.load_state_dict({k: np.full_like(a, 2) for k, a in sd.items()})
    assert layer.running_var is kept and (kept == 2).all()
    assert int(layer.num_batches_tracked) == 2


@pytest.mark.parametrize("ours_cls,torch_cls,shape", LAYERS, ids=IDS)
def test_running_stats_are_updated_in_place_as_in_torch(ours_cls, torch_cls, shape):
    ours, ref = _pair(ours_cls, torch_cls, shape[1], np.float64)
    kept, kept_t = ours.running_mean, ref.running_mean
    before, before_t = kept.copy(), kept_t.clone()
    x = np.random.default_rng(0).normal(1.0, 2.0, shape)
    ours.forward(x)
    ref(torch.from_numpy(x))
    assert not np.array_equal(kept, before)  # the kept reference sees the update
    assert not torch.equal(kept_t, before_t)  # as torch's does
    np.testing.assert_allclose(kept, kept_t.numpy(), rtol=1e-12)


@pytest.mark.parametrize("ours_cls,torch_cls,shape", LAYERS, ids=IDS)
def test_reset_methods_match_torch(ours_cls, torch_cls, shape):
    ours, ref = _pair(ours_cls, torch_cls, shape[1], np.float64)
    _run(ours, ref, shape, np.float64, steps=2)
    ours.reset_running_stats()
    ref.reset_running_stats()
    for k, a in ours.state_dict().items():
        np.testing.assert_array_equal(a, ref.state_dict()[k].numpy())
    assert not np.allclose(ours.gamma, 1)  # parameters stay
    ours.reset_parameters()
    ref.reset_parameters()
    for k, a in ours.state_dict().items():
        np.testing.assert_array_equal(a, ref.state_dict()[k].numpy())


# ------------------------------------------------------------- the six bugs of issue 11


def test_bug1_wrong_buffer_shape_is_named():
    layer = bn.BatchNorm1d(4).eval()
    layer.running_mean = np.zeros(3)
    with pytest.raises(ValueError, match=r"running_mean must be an array of shape"):
        layer.forward(np.zeros((2, 4)))


@pytest.mark.parametrize("mode", ["False", None, 0, 1.0])
def test_bug2_train_accepts_a_bool_only_as_torch(mode):
    with pytest.raises(ValueError, match="boolean") as ours:
        bn.BatchNorm1d(4).train(mode)
    with pytest.raises(ValueError, match="boolean"):
        torch.nn.BatchNorm1d(4).train(mode)
    assert "mode" in str(ours.value)


def test_bug3_eps_that_vanishes_in_float32_is_refused():
    x = np.ones((4, 2), np.float32)
    x[:, 1] = np.arange(4)
    g, b = np.ones(2, np.float32), np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="eps=1e-50 rounds to 0 in float32"):
        bn.batchnorm_forward(x, g, b, eps=1e-50)
    with pytest.raises(ValueError, match="eps"):
        bn.BatchNorm1d(2, eps=1e-50, dtype=np.float32)
    bn.batchnorm_forward(x.astype(np.float64), g, b, eps=1e-50)  # fine in float64
    # the smallest eps that does not vanish gives torch's answer: 0 on the constant
    out, _ = bn.batchnorm_forward(x, g, b, eps=1.5e-45)
    t = F.batch_norm(torch.from_numpy(x), None, None, training=True, eps=1.5e-45)
    np.testing.assert_allclose(out, t.numpy(), atol=1e-6)
    assert (out[:, 0] == 0).all()


@pytest.mark.parametrize("backward", [bn.batchnorm_backward, bn.batchnorm_backward_alt])
def test_bug4_float32_backward_overflow_is_refused(backward):
    x = np.float32([[1e10, 1.0], [-1e10, 2.0], [3e9, 0.0]])
    _, cache = bn.batchnorm_forward(x, np.ones(2, np.float32), np.zeros(2, np.float32))
    dout = np.full_like(x, 1e30)  # |dout| * |x - mu| is far beyond float32's range
    with pytest.raises(ValueError, match="dout is too large for float32"):
        backward(dout, cache)
    # well inside the range, the gradients are finite and match torch in float64
    dout = np.float32([[1e20, 1.0], [-2e20, 2.0], [1e20, 0.5]])
    got = backward(dout, cache)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    gt = torch.ones(2, dtype=torch.float64, requires_grad=True)
    F.batch_norm(xt, None, None, gt, None, training=True).backward(
        torch.tensor(dout, dtype=torch.float64))
    assert all(np.isfinite(g).all() for g in got)
    np.testing.assert_allclose(got[1], gt.grad.numpy(), rtol=1e-4)


def test_bug5_torch_dtype_is_named():
    with pytest.raises(TypeError, match="dtype.*np.float32"):
        bn.BatchNorm1d(4, dtype=torch.float32)
    assert bn.BatchNorm1d(4, dtype="float32").dtype == np.float32


def test_bug6_numeric_gradient_of_empty_x():
    with pytest.raises(ValueError, match="x must hold at least one value"):
        gc.numeric_gradient(lambda a: a * 2, np.zeros((0, 3)), np.zeros((0, 3)))


# ------------------------------------------------ float32 inference, large offsets


def _inference_inputs(seed=0):
    r = np.random.default_rng(seed)
    z = r.normal(size=(256, 8))
    x = (1e4 + 0.1 * z).astype(np.float32)
    mean = np.full(8, 1e4, np.float32) + np.float32(0.01)
    var = np.full(8, 0.01, np.float32)
    gamma, beta = np.ones(8, np.float32), np.zeros(8, np.float32)
    exact = (x.astype(np.float64) - mean.astype(np.float64)) / np.sqrt(
        var.astype(np.float64) + 1e-5)
    return x, gamma, beta, mean, var, exact


def test_float32_inference_with_large_mean_is_accurate():
    x, gamma, beta, mean, var, exact = _inference_inputs()
    y = bn.batchnorm_inference(x, gamma, beta, mean, var)
    assert y.dtype == np.float32
    assert np.abs(y - exact).max() / np.abs(exact).max() < 1e-6
    layer = bn.BatchNorm1d(8, dtype=np.float32).eval()
    layer.running_mean[...] = mean
    layer.running_var[...] = var
    assert np.abs(layer.forward(x) - exact).max() / np.abs(exact).max() < 1e-6


def test_float32_folded_map_alone_would_fail():
    """The test above can fail: the lesson's folded map, unshifted, loses 1e-3."""
    x, gamma, beta, mean, var, exact = _inference_inputs()
    scale = gamma / np.sqrt(var + np.float32(1e-5))
    folded = x * scale + (beta - mean * scale)
    assert np.abs(folded - exact).max() / np.abs(exact).max() > 1e-4
