"""bn_helpers.batchnorm against independent oracles: torch (forward, autograd, running
statistics) and centred finite differences in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bn_helpers import batchnorm as bn
from bn_helpers.gradcheck import numeric_gradient, rel_error

# (rtol, atol) per dtype for comparisons with torch
TOL = {np.float64: (1e-10, 1e-12), np.float32: (1e-4, 1e-5)}
FC_SHAPES = [(2, 1), (4, 3), (60, 100), (257, 33)]
CONV_SHAPES = [(2, 3, 1, 1), (4, 3, 5, 6), (8, 16, 7, 7)]
DTYPES = [np.float64, np.float32]


def _inputs(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.normal(1.5, 3.0, shape)).astype(dtype)
    gamma = rng.normal(1.0, 0.5, c).astype(dtype)
    beta = rng.normal(0.0, 1.0, c).astype(dtype)
    dout = rng.normal(size=shape).astype(dtype)
    return x, gamma, beta, dout


def _torch_reference(x, gamma, beta, dout, eps=1e-5):
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    out = F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    out.backward(torch.tensor(dout))
    return (out.detach().numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy())


def _assert_close(got, expected, dtype):
    rtol, atol = TOL[dtype]
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", FC_SHAPES)
@pytest.mark.parametrize("backward", [bn.batchnorm_backward, bn.batchnorm_backward_alt])
def test_fc_forward_backward_match_torch(shape, dtype, backward):
    x, gamma, beta, dout = _inputs(shape, dtype, seed=sum(shape))
    out, cache = bn.batchnorm_forward(x, gamma, beta)
    t_out, t_dx, t_dgamma, t_dbeta = _torch_reference(x, gamma, beta, dout)
    _assert_close(out, t_out, dtype)
    dx, dgamma, dbeta = backward(dout, cache)
    _assert_close(dx, t_dx, dtype)
    _assert_close(dgamma, t_dgamma, dtype)
    _assert_close(dbeta, t_dbeta, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_spatial_forward_backward_match_torch(shape, dtype):
    x, gamma, beta, dout = _inputs(shape, dtype, seed=sum(shape))
    out, cache = bn.spatial_batchnorm_forward(x, gamma, beta)
    t_out, t_dx, t_dgamma, t_dbeta = _torch_reference(x, gamma, beta, dout)
    _assert_close(out, t_out, dtype)
    dx, dgamma, dbeta = bn.spatial_batchnorm_backward(dout, cache)
    _assert_close(dx, t_dx, dtype)
    _assert_close(dgamma, t_dgamma, dtype)
    _assert_close(dbeta, t_dbeta, dtype)


def test_spatial_equals_fc_on_flattened_maps():
    """Conv BN is FC BN on the (N*H*W, C) matrix: every location normalised alike."""
    x, gamma, beta, dout = _inputs((3, 4, 5, 2), np.float64, seed=7)
    out, cache = bn.spatial_batchnorm_forward(x, gamma, beta)
    flat = x.transpose(0, 2, 3, 1).reshape(-1, 4)
    out_fc, cache_fc = bn.batchnorm_forward(flat, gamma, beta)
    np.testing.assert_allclose(
        out.transpose(0, 2, 3, 1).reshape(-1, 4), out_fc, atol=1e-12
    )
    dx, dg, db = bn.spatial_batchnorm_backward(dout, cache)
    dx_fc, dg_fc, db_fc = bn.batchnorm_backward(
        dout.transpose(0, 2, 3, 1).reshape(-1, 4), cache_fc
    )
    np.testing.assert_allclose(
        dx.transpose(0, 2, 3, 1).reshape(-1, 4), dx_fc, atol=1e-12
    )
    np.testing.assert_allclose(dg, dg_fc, atol=1e-12)
    np.testing.assert_allclose(db, db_fc, atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 4), (10, 3)])
@pytest.mark.parametrize("backward", [bn.batchnorm_backward, bn.batchnorm_backward_alt])
def test_fc_gradients_match_finite_differences(shape, backward):
    x, gamma, beta, dout = _inputs(shape, np.float64, seed=3)
    _, cache = bn.batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = backward(dout, cache)
    dx_num = numeric_gradient(
        lambda a: bn.batchnorm_forward(a, gamma, beta)[0], x, dout
    )
    dg_num = numeric_gradient(
        lambda g: bn.batchnorm_forward(x, g, beta)[0], gamma, dout
    )
    db_num = numeric_gradient(
        lambda b: bn.batchnorm_forward(x, gamma, b)[0], beta, dout
    )
    assert rel_error(dx, dx_num) < 1e-8
    assert rel_error(dgamma, dg_num) < 1e-8
    assert rel_error(dbeta, db_num) < 1e-8


def test_spatial_gradients_match_finite_differences():
    x, gamma, beta, dout = _inputs((2, 3, 3, 2), np.float64, seed=5)
    _, cache = bn.spatial_batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = bn.spatial_batchnorm_backward(dout, cache)
    f = bn.spatial_batchnorm_forward
    assert (
        rel_error(dx, numeric_gradient(lambda a: f(a, gamma, beta)[0], x, dout)) < 1e-8
    )
    assert (
        rel_error(dgamma, numeric_gradient(lambda g: f(x, g, beta)[0], gamma, dout))
        < 1e-8
    )
    assert (
        rel_error(dbeta, numeric_gradient(lambda b: f(x, gamma, b)[0], beta, dout))
        < 1e-8
    )


def test_staged_and_alt_agree_and_dx_sums_to_zero():
    x, gamma, beta, dout = _inputs((64, 10), np.float64, seed=11)
    _, cache = bn.batchnorm_forward(x, gamma, beta)
    staged = bn.batchnorm_backward(dout, cache)
    alt = bn.batchnorm_backward_alt(dout, cache)
    for a, b in zip(staged, alt, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # BN is invariant to shifting a feature, so the gradient has no component along ones
    np.testing.assert_allclose(staged[0].sum(axis=0), 0, atol=1e-10)


def test_forward_statistics_and_identity_recovery():
    x, _, _, _ = _inputs((50, 6), np.float64, seed=1)
    eps = 1e-5
    out, cache = bn.batchnorm_forward(x, np.ones(6), np.zeros(6), eps=eps)
    np.testing.assert_allclose(cache.mu.ravel(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cache.var.ravel(), x.var(0), rtol=1e-12)  # biased, 1/m
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(0), x.var(0) / (x.var(0) + eps), rtol=1e-12)
    # gamma = sqrt(var + eps), beta = mu gives back x (the identity transform, Sec. 3)
    back, _ = bn.batchnorm_forward(x, np.sqrt(x.var(0) + eps), x.mean(0), eps=eps)
    np.testing.assert_allclose(back, x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "inference,shape",
    [(bn.batchnorm_inference, (16, 5)), (bn.spatial_batchnorm_inference, (3, 5, 4, 4))],
)
def test_inference_matches_torch_eval_and_is_per_example(inference, shape):
    x, gamma, beta, _ = _inputs(shape, np.float64, seed=2)
    rng = np.random.default_rng(0)
    mean, var = rng.normal(size=5), rng.uniform(0.5, 2.0, 5)
    y = inference(x, gamma, beta, mean, var, eps=1e-3)
    stats = (torch.tensor(a) for a in (x, mean, var, gamma, beta))
    t = F.batch_norm(*stats, training=False, eps=1e-3)
    np.testing.assert_allclose(y, t.numpy(), rtol=1e-12, atol=1e-12)
    single = inference(x[1:2], gamma, beta, mean, var, eps=1e-3)
    np.testing.assert_array_equal(single, y[1:2])  # output depends on the example alone


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "layer_cls,torch_cls,shape",
    [
        (bn.BatchNorm1d, torch.nn.BatchNorm1d, (32, 7)),
        (bn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 5)),
    ],
)
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0])
def test_layer_running_stats_match_torch(layer_cls, torch_cls, shape, dtype, momentum):
    rng = np.random.default_rng(42)
    c = shape[1]
    ours = layer_cls(c, eps=1e-5, momentum=momentum, dtype=dtype)
    ref = torch_cls(c, eps=1e-5, momentum=momentum).to(
        torch.float64 if dtype == np.float64 else torch.float32
    )
    gamma = rng.normal(1, 0.2, c).astype(dtype)
    beta = rng.normal(0, 0.2, c).astype(dtype)
    ours.gamma, ours.beta = gamma.copy(), beta.copy()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(gamma))
        ref.bias.copy_(torch.from_numpy(beta))
    rtol, atol = TOL[dtype]
    for step in range(5):
        x = rng.normal(step, 1 + step, shape).astype(dtype)
        dout = rng.normal(size=shape).astype(dtype)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        ref.zero_grad()
        yt = ref(xt)
        yt.backward(torch.from_numpy(dout))
        y = ours.forward(x)
        dx = ours.backward(dout)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=atol)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=rtol, atol=atol)
        np.testing.assert_allclose(
            ours.dgamma, ref.weight.grad.numpy(), rtol=rtol, atol=atol
        )
        np.testing.assert_allclose(
            ours.dbeta, ref.bias.grad.numpy(), rtol=rtol, atol=atol
        )
        np.testing.assert_allclose(
            ours.running_mean, ref.running_mean.numpy(), rtol=rtol, atol=atol
        )
        np.testing.assert_allclose(
            ours.running_var, ref.running_var.numpy(), rtol=rtol, atol=atol
        )
    assert ours.num_batches_tracked == int(ref.num_batches_tracked) == 5
    ours.eval()
    ref.eval()
    x = rng.normal(size=(1,) + shape[1:]).astype(
        dtype
    )  # a single example is fine in eval
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = ref(xt)
    dout = rng.normal(size=x.shape).astype(dtype)
    yt.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(
        ours.forward(x), yt.detach().numpy(), rtol=rtol, atol=atol
    )
    np.testing.assert_allclose(
        ours.backward(dout), xt.grad.numpy(), rtol=rtol, atol=atol
    )


def test_running_variance_is_unbiased():
    """momentum=1 keeps only the last batch: running_var must be m/(m-1) sigma_B^2."""
    x = np.random.default_rng(0).normal(size=(6, 3))
    layer = bn.BatchNorm1d(3, momentum=1.0)
    layer.forward(x)
    np.testing.assert_allclose(layer.running_var, x.var(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, x.var(0) * 6 / 5, rtol=1e-12)
    np.testing.assert_allclose(layer.running_mean, x.mean(0), rtol=1e-12)


@pytest.mark.parametrize("offset", [1e4, 1e5, 1e6, 1e7, 1e8])
@pytest.mark.parametrize("shape", [(256, 16), (16, 4, 3, 3)])
def test_float32_large_offset_is_stable(offset, shape):
    rng = np.random.default_rng(int(np.log10(offset)))
    x = (offset + rng.normal(size=shape)).astype(np.float32)
    c = shape[1]
    fwd = bn.batchnorm_forward if len(shape) == 2 else bn.spatial_batchnorm_forward
    out, _ = fwd(x, np.ones(c, np.float32), np.zeros(c, np.float32))
    # independent oracle: the textbook two-pass formula on the same data in float64
    x64 = x.astype(np.float64)
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    mu, var = x64.mean(axes, keepdims=True), x64.var(axes, keepdims=True)
    ref = (x64 - mu) / np.sqrt(var + 1e-5)
    assert out.dtype == np.float32
    assert np.abs(out - ref).max() < 1e-3


def test_float32_large_offset_naive_formula_would_fail():
    """The test above can fail: the textbook E[x^2] - E[x]^2 breaks at this offset."""
    x = (1e4 + np.random.default_rng(0).normal(size=(256, 16))).astype(np.float32)
    naive_var = (x * x).mean(0) - x.mean(0) ** 2
    ref_var = x.astype(np.float64).var(0)
    assert np.abs(naive_var - ref_var).max() > 0.1


def test_constant_feature_gives_finite_output_and_gradients():
    x = np.ones((8, 3))
    x[:, 1] = np.arange(8)
    out, cache = bn.batchnorm_forward(x, np.ones(3), np.zeros(3))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, 0], 0.0)
    for backward in (bn.batchnorm_backward, bn.batchnorm_backward_alt):
        grads = backward(np.ones_like(x), cache)
        assert all(np.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("offset", [1e4, 1e6])
@pytest.mark.parametrize("backward", [bn.batchnorm_backward, bn.batchnorm_backward_alt])
def test_float32_large_offset_backward_is_stable(offset, backward):
    """The backward pass recentres x from the cache: it must stay accurate too."""
    rng = np.random.default_rng(1)
    x = (offset + rng.normal(size=(128, 8))).astype(np.float32)
    dout = rng.normal(size=x.shape).astype(np.float32)
    gamma = rng.normal(1, 0.3, 8).astype(np.float32)
    _, cache = bn.batchnorm_forward(x, gamma, np.zeros(8, np.float32))
    got = backward(dout, cache)
    # independent oracle: torch autograd on the same data in float64
    x64, g64, d64 = (a.astype(np.float64) for a in (x, gamma, dout))
    ref = _torch_reference(x64, g64, np.zeros(8), d64)[1:]
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, r, rtol=1e-3, atol=1e-3 * np.abs(r).max())


@pytest.mark.parametrize("backward", [bn.batchnorm_backward, bn.batchnorm_backward_alt])
def test_inputs_are_not_modified_and_layouts_do_not_matter(backward):
    x, gamma, beta, dout = _inputs((32, 6), np.float64, seed=9)
    copies = [a.copy() for a in (x, gamma, beta, dout)]
    out, cache = bn.batchnorm_forward(x, gamma, beta)
    grads = backward(dout, cache)
    for a, b in zip((x, gamma, beta, dout), copies, strict=True):
        np.testing.assert_array_equal(a, b)
    # read-only, Fortran-ordered and strided inputs give the same numbers
    ro = x.copy()
    ro.flags.writeable = False
    strided = np.repeat(x, 2, axis=0)[::2]
    for variant in (ro, np.asfortranarray(x), strided):
        out2, cache2 = bn.batchnorm_forward(variant, gamma, beta)
        np.testing.assert_allclose(out2, out, rtol=1e-13, atol=1e-13)
        for g2, g in zip(backward(dout, cache2), grads, strict=True):
            np.testing.assert_allclose(g2, g, rtol=1e-12, atol=1e-13)


def test_cache_is_independent_of_later_changes_to_gamma():
    x, gamma, beta, dout = _inputs((16, 3), np.float64, seed=4)
    _, cache = bn.batchnorm_forward(x, gamma, beta)
    dx_before = bn.batchnorm_backward_alt(dout, cache)[0]
    gamma *= 2  # e.g. an optimiser step between forward and backward
    np.testing.assert_array_equal(bn.batchnorm_backward_alt(dout, cache)[0], dx_before)


@pytest.mark.parametrize("offset", [0.0, 3.0, 30.0, 300.0, 3e3, 3e5])
def test_float32_accuracy_on_both_sides_of_the_recentring_threshold(offset):
    """Recentring starts when the offset dwarfs the spread; either side is accurate."""
    rng = np.random.default_rng(7)
    x = (offset + rng.normal(size=(128, 6))).astype(np.float32)
    out, cache = bn.batchnorm_forward(x, np.ones(6, np.float32), np.zeros(6, np.float32))
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(0)) / np.sqrt(x64.var(0) + 1e-5)
    assert np.abs(out - ref).max() < 2e-5
    assert cache.mu.dtype == np.float32
    # the cached mean is mu_B to float32 rounding, also when the lesson ran on x - x[0]
    np.testing.assert_allclose(cache.mu, x64.mean(0), rtol=2e-7, atol=1e-6)
