"""Visible checks for the exercises you write in bn_helpers/batchnorm.py.

One function per exercise, called in the notebook's check cell right after the prompt:

    2.1 verify.batchnorm_forward()       3.7 verify.batchnorm_backward()
    3.8 verify.batchnorm_backward_alt()  4.1 verify.update_running_stats()
    4.2 verify.batchnorm_inference()     4.3 verify.layer_forward()
    5.1 verify.spatial_forward()         5.2 verify.spatial_backward()

Each looks your function up when it runs (so an edit with ``%autoreload 2`` counts),
runs several cases (shapes, float32 and float64, small and large eps) and compares with
independent oracles only: torch (``F.batch_norm``, autograd, ``nn.BatchNorm1d``) and
centred finite differences. It prints the check lines of its last case and a summary,
and raises AssertionError on the first disagreement; when your answer equals a known
wrong one, the first line of the error says which mistake it is. A
NotImplementedError from a stub is not caught.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bn_helpers import batchnorm
from bn_helpers.checks import check_close, check_true
from bn_helpers.gradcheck import numeric_gradient

__all__ = [
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "update_running_stats",
    "batchnorm_inference",
    "layer_forward",
    "spatial_forward",
    "spatial_backward",
]

# (rtol, atol) per dtype: float64 agrees with torch to rounding, float32 to ~1e-6
TOL = {np.float64: (1e-9, 1e-11), np.float32: (1e-4, 1e-5)}

# one-line diagnoses of recognised mistakes
EPS_OUTSIDE = ("your x_hat divides by sqrt(var) + eps: eps goes inside the square root,"
               " (x - mu) / sqrt(var + eps)")
UNBIASED_FORWARD = ("you normalised with the unbiased variance (divide by m - 1): "
                    "training-mode BN divides by m (Alg. 1)")
NO_EPS = "you left out eps: x_hat = (x - mu) / sqrt(var + eps)"
WRONG_AXIS_FORWARD = ("your statistics are over axis 1 (one per example): BN averages "
                      "over the batch, axis 0, one mean and variance per feature")
SWAPPED = "gamma and beta are swapped: out = gamma * x_hat + beta"
NO_AFFINE = "you returned x_hat: scale and shift it, out = gamma * x_hat + beta"
NO_MU_BRANCH = ("your dx equals the gradient without the mu branch: mu depends on "
                "every x_i, so dx needs the term dmu / m")
NO_VAR_BRANCH = ("your dx equals the gradient without the variance branch: sigma2 "
                 "depends on every x_i, so dx needs 2 * xc * dvar / m")
NO_GAMMA_DX = "your dx leaves out gamma: dx_hat = gamma * dout"
WRONG_AXIS_SUM = ("your {name} is summed over axis 1 (one value per example): sum over "
                  "the batch, axis 0, one value per feature")
DGAMMA_X = "your dgamma uses x instead of x_hat: dgamma = sum(dout * x_hat)"
BIASED_RUNNING = ("your running_var averages the biased batch variance: use the "
                  "unbiased m/(m-1) * sigma2_B (Alg. 2, line 10)")
REVERSED = ("your momentum convention is reversed: torch's is new = (1 - momentum) * "
            "old + momentum * batch statistic")
WRONG_UNBIASING = "the unbiased variance is m/(m-1) * sigma2_B, not (m-1)/m * sigma2_B"
VAR_NOT_STD = ("you divided by var + eps: Alg. 2 divides by the standard deviation, "
               "sqrt(var + eps)")
BATCH_STATS_INFERENCE = ("you used the batch's mean and variance: inference uses the "
                         "mean and var passed in (the population statistics, Alg. 2)")
NO_BETA = "you left out beta: y = gamma * (x - mean) / sqrt(var + eps) + beta"
EVAL_BATCH_STATS = ("in eval mode your layer normalised with the batch's statistics: "
                    "use running_mean and running_var (batchnorm_inference)")
TRAIN_RUNNING_STATS = ("in training mode your layer normalised with the running "
                       "statistics: use the batch's (batchnorm_forward)")
STALE_RUNNING = ("your running statistics did not change in training mode: call "
                 "update_running_stats and store its result in the layer's buffers")
RESHAPE_NO_TRANSPOSE = ("you reshaped (N, C, H, W) to (-1, C) without moving C last: "
                        "transpose(0, 2, 3, 1) first, so each row is one location")
PER_LOCATION = ("your statistics are per location (over N only): spatial BN shares one "
                "mean and variance per channel, over N, H and W")
PER_EXAMPLE_MAP = ("your statistics are per example and channel (over H, W only): "
                   "spatial BN averages over N, H and W")


# ------------------------------------------------------------------ the machinery


def _as_array(name, a) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu":
        raise AssertionError(f"{name}: expected a numpy array of numbers, got "
                             f"{type(a).__name__}")
    return a


def _check(name, got, expected, dtype, *, hints=(), quiet=True):
    """check_close against the oracle; if it fails and `got` equals a known wrong
    answer, the error starts with that mistake's one-line diagnosis."""
    rtol, atol = TOL[dtype]
    got = _as_array(name, got)
    expected = np.asarray(expected)
    try:
        if got.shape != expected.shape:
            raise AssertionError(f"{name}: shape {got.shape}, expected shape "
                                 f"{expected.shape}")
        check_close(name, got, expected, rtol=rtol, atol=atol, quiet=quiet)
    except AssertionError as e:
        for wrong, message in hints:
            wrong = np.asarray(wrong)
            if wrong.shape == got.shape and np.allclose(
                    got, wrong, rtol=max(rtol, 1e-7), atol=atol):
                raise AssertionError(f"{name}: {message}\n{e}") from None
        raise


def _rng(seed):
    return np.random.default_rng(seed)


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _fc_case(shape, dtype, seed):
    """x with features on very different scales and offsets, gamma, beta, dout."""
    r = _rng(seed)
    n, d = shape[0], shape[1]
    scales = np.geomspace(0.01, 20.0, d).reshape((1, d) + (1,) * (len(shape) - 2))
    x = (r.normal(3.0, 1.0, shape) * scales).astype(dtype)
    gamma = r.normal(1.0, 0.5, d).astype(dtype)
    beta = r.normal(0.0, 1.0, d).astype(dtype)
    dout = r.normal(size=shape).astype(dtype)
    return x, gamma, beta, dout


def _axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _torch_bn(x, gamma, beta, eps):
    """Training-mode BN by torch, and its (mean, biased var, x_hat)."""
    out = F.batch_norm(_t(x), None, None, _t(gamma), _t(beta), training=True, eps=eps)
    x_hat = F.batch_norm(_t(x), None, None, training=True, eps=eps)
    xt, axes = _t(x), _axes(x)
    mu = xt.mean(dim=axes)
    var = xt.var(dim=axes, unbiased=False)
    return out.numpy(), mu.numpy(), var.numpy(), x_hat.numpy()


def _torch_grads(x, gamma, beta, dout, eps, detach=None):
    """dx, dgamma, dbeta by autograd; detach='mu' or 'var' cuts that branch (a wrong
    answer to recognise)."""
    xt, gt, bt = (_t(a).clone().requires_grad_(True) for a in (x, gamma, beta))
    axes = _axes(x)
    bshape = [1] * x.ndim
    bshape[1] = x.shape[1]
    mu = xt.mean(dim=axes, keepdim=True)
    if detach == "mu":
        mu = mu.detach()
    var = ((xt - mu) ** 2).mean(dim=axes, keepdim=True)
    if detach == "var":
        var = var.detach()
    if detach is None:  # the oracle is torch's own kernel
        out = F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    else:
        x_hat = (xt - mu) / torch.sqrt(var + eps)
        out = gt.reshape(bshape) * x_hat + bt.reshape(bshape)
    out.backward(_t(dout))
    return xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


def _cache_by_torch(x, gamma, eps):
    """A BNCache filled with torch's statistics, so the backward checks do not depend
    on your forward pass."""
    _, mu, var, x_hat = _torch_bn(x, np.ones_like(gamma), np.zeros_like(gamma), eps)
    inv_std = torch.rsqrt(_t(var) + eps).numpy()
    return batchnorm.BNCache(x_hat=x_hat, mu=mu, var=var, inv_std=inv_std,
                             gamma=gamma.copy(), eps=eps)


def _numeric_grads(x, gamma, beta, dout, eps):
    """dx, dgamma, dbeta by centred differences of torch's forward (float64)."""
    def f(x_, g_, b_):
        return F.batch_norm(_t(x_), None, None, _t(g_), _t(b_), training=True,
                            eps=eps).numpy()
    return (numeric_gradient(lambda a: f(a, gamma, beta), x.copy(), dout),
            numeric_gradient(lambda a: f(x, a, beta), gamma.copy(), dout),
            numeric_gradient(lambda a: f(x, gamma, a), beta.copy(), dout))


def _attr(cache, name):
    if not hasattr(cache, name):
        raise AssertionError(f"cache has no attribute {name!r}: return a "
                             f"BNCache(x_hat=..., mu=..., var=..., inv_std=..., "
                             f"gamma=..., eps=...)")
    return getattr(cache, name)


def _per_feature(name, a, d):
    """(D,) or (1, D) -> (D,), so keepdims=True in your code is fine."""
    a = _as_array(name, a)
    return a.reshape(d) if a.size == d else a


def _check_statistics(label, cache, mu, var, dtype, quiet, var_hints=()):
    """cache.mu and cache.var (per feature or channel) against torch's."""
    d = mu.size
    _check(f"cache.mu {label}", _per_feature("cache.mu", _attr(cache, "mu"), d), mu,
           dtype, quiet=quiet)
    _check(f"cache.var {label}", _per_feature("cache.var", _attr(cache, "var"), d),
           var, dtype, quiet=quiet, hints=var_hints)


def _summary(what, n_cases, detail):
    print(f"{what}: all {n_cases} cases agree ({detail})")


# --------------------------------------------------------------- 2.1 forward pass

FORWARD_CASES = [((64, 5), np.float64, 1e-5), ((64, 5), np.float64, 0.1),
                 ((2, 4), np.float64, 1e-5), ((16, 3), np.float32, 1e-5)]


def _forward_hints(x, gamma, beta, eps):
    x64, g, b = (a.astype(np.float64) for a in (x, gamma, beta))
    mu, var = x64.mean(0), x64.var(0)
    xc = x64 - mu
    with np.errstate(divide="ignore", invalid="ignore"):
        no_eps = xc / np.sqrt(var)
    mu1, var1 = x64.mean(1, keepdims=True), x64.var(1, keepdims=True)
    x_hat = xc / np.sqrt(var + eps)
    return [(g * xc / (np.sqrt(var) + eps) + b, EPS_OUTSIDE),
            (g * xc / np.sqrt(x64.var(0, ddof=1) + eps) + b, UNBIASED_FORWARD),
            (g * no_eps + b, NO_EPS),
            (g * (x64 - mu1) / np.sqrt(var1 + eps) + b, WRONG_AXIS_FORWARD),
            (b * x_hat + g, SWAPPED), (x_hat, NO_AFFINE)]


def batchnorm_forward():
    """Exercise 2.1: out and cache (mu, var, x_hat) against torch, 4 cases."""
    for i, (shape, dtype, eps) in enumerate(FORWARD_CASES):
        x, gamma, beta, _ = _fc_case(shape, dtype, seed=21 + i)
        out, cache = batchnorm.batchnorm_forward(x.copy(), gamma.copy(), beta.copy(),
                                                 eps)
        t_out, mu, var, x_hat = _torch_bn(x, gamma, beta, eps)
        quiet = i < len(FORWARD_CASES) - 1
        label = f"{shape} {np.dtype(dtype).name} eps={eps:g}"
        _check(f"out {label}", out, t_out, dtype, quiet=quiet,
               hints=_forward_hints(x, gamma, beta, eps))
        _check_statistics(label, cache, mu, var, dtype, quiet, var_hints=[
            (x.astype(np.float64).var(0, ddof=1), UNBIASED_FORWARD)])
        _check(f"cache.x_hat {label}", _attr(cache, "x_hat"), x_hat, dtype,
               quiet=quiet)
    _summary("batchnorm_forward", len(FORWARD_CASES),
             "out, mu, var, x_hat vs torch; float32 and float64; eps 1e-5 and 0.1")


# ----------------------------------------------------------- 3.7, 3.8 backward pass

BACKWARD_CASES = [((8, 5), np.float64, 1e-5), ((32, 7), np.float64, 0.1),
                  ((16, 4), np.float32, 1e-5)]


def _backward_hints(x, gamma, beta, dout, eps):
    dx_no_mu = _torch_grads(x, gamma, beta, dout, eps, detach="mu")[0]
    dx_no_var = _torch_grads(x, gamma, beta, dout, eps, detach="var")[0]
    dx_no_gamma = _torch_grads(x, np.ones_like(gamma), beta, dout, eps)[0]
    x_hat = _torch_bn(x, np.ones_like(gamma), np.zeros_like(beta), eps)[3]
    return {
        "dx": [(dx_no_mu, NO_MU_BRANCH), (dx_no_var, NO_VAR_BRANCH),
               (dx_no_gamma, NO_GAMMA_DX)],
        "dgamma": [((dout * x_hat).sum(axis=1), WRONG_AXIS_SUM.format(name="dgamma")),
                   ((dout * x).sum(axis=0), DGAMMA_X)],
        "dbeta": [(dout.sum(axis=1), WRONG_AXIS_SUM.format(name="dbeta"))],
    }


def _check_backward(name):
    for i, (shape, dtype, eps) in enumerate(BACKWARD_CASES):
        x, gamma, beta, dout = _fc_case(shape, dtype, seed=37 + i)
        cache = _cache_by_torch(x, gamma, eps)
        got = getattr(batchnorm, name)(dout.copy(), cache)
        if not isinstance(got, tuple) or len(got) != 3:
            raise AssertionError(f"{name} must return (dx, dgamma, dbeta), got "
                                 f"{type(got).__name__}")
        expected = _torch_grads(x, gamma, beta, dout, eps)
        hints = _backward_hints(x, gamma, beta, dout, eps)
        label = f"{shape} {np.dtype(dtype).name} eps={eps:g}"
        for q, g, e in zip(("dx", "dgamma", "dbeta"), got, expected, strict=True):
            _check(f"{q} vs torch {label}", g, e, dtype, hints=hints[q],
                   quiet=i < len(BACKWARD_CASES) - 1)
        if i == 0:  # a second, independent oracle on the float64 case
            for q, g, e in zip(("dx", "dgamma", "dbeta"), got,
                               _numeric_grads(x, gamma, beta, dout, eps), strict=True):
                check_close(f"{q} vs finite differences {label}", g, e, rtol=1e-5,
                            atol=1e-7)
    _summary(name, len(BACKWARD_CASES),
             "dx, dgamma, dbeta vs torch autograd and finite differences")


def batchnorm_backward():
    """Exercise 3.7: the staged backward against torch autograd and finite
    differences, 3 cases (the cache is filled with torch's statistics)."""
    _check_backward("batchnorm_backward")


def batchnorm_backward_alt():
    """Exercise 3.8: the closed-form backward, same cases as 3.7."""
    _check_backward("batchnorm_backward_alt")


# ------------------------------------------------------ 4.1 running statistics

RUNNING_CASES = [(0.1, np.float64), (0.3, np.float64), (0.1, np.float32)]
BATCH_SIZES = (32, 2, 7, 60)


def update_running_stats():
    """Exercise 4.1: several steps against torch.nn.BatchNorm1d's running buffers,
    with batch sizes from 2 to 60 (where m/(m-1) matters most)."""
    d = 6
    for k, (momentum, dtype) in enumerate(RUNNING_CASES):
        r = _rng(41 + k)
        layer = torch.nn.BatchNorm1d(d, momentum=momentum).to(torch.from_numpy(
            np.zeros(0, dtype)).dtype)
        for step, m in enumerate(BATCH_SIZES, start=1):
            x = r.normal(2.0, 3.0, (m, d)).astype(dtype)
            old_mean = layer.running_mean.numpy().copy()
            old_var = layer.running_var.numpy().copy()
            xt = _t(x)
            batch_mean = xt.mean(dim=0).numpy()
            batch_var = xt.var(dim=0, unbiased=False).numpy()
            new = batchnorm.update_running_stats(old_mean.copy(), old_var.copy(),
                                                 batch_mean.copy(), batch_var.copy(),
                                                 m, momentum)
            layer(xt)  # torch's update, the oracle
            if not isinstance(new, tuple) or len(new) != 2:
                raise AssertionError("update_running_stats must return (new_mean, "
                                     f"new_var), got {type(new).__name__}")
            unbiased = batch_var.astype(np.float64) * m / (m - 1)
            rev = (momentum * old_mean + (1 - momentum) * batch_mean,
                   momentum * old_var + (1 - momentum) * unbiased)
            biased = (1 - momentum) * old_var + momentum * batch_var
            wrong_factor = (1 - momentum) * old_var + momentum * batch_var * (m - 1) / m
            label = f"step {step} (m={m}) momentum={momentum} {np.dtype(dtype).name}"
            quiet = (k, step) != (len(RUNNING_CASES) - 1, len(BATCH_SIZES))
            _check(f"running_mean {label}", _per_feature("new_mean", new[0], d),
                   layer.running_mean.numpy(), dtype, quiet=quiet,
                   hints=[(rev[0], REVERSED)])
            _check(f"running_var {label}", _per_feature("new_var", new[1], d),
                   layer.running_var.numpy(), dtype, quiet=quiet,
                   hints=[(rev[1], REVERSED), (biased, BIASED_RUNNING),
                          (wrong_factor, WRONG_UNBIASING)])
    _summary("update_running_stats", len(RUNNING_CASES) * len(BATCH_SIZES),
             "steps vs torch.nn.BatchNorm1d; momentum 0.1, 0.3; float32, float64")


# ------------------------------------------------------------- 4.2 inference

INFERENCE_CASES = [((16, 5), np.float64, 1e-3), ((1, 5), np.float64, 1e-5),
                   ((16, 5), np.float64, 0.1), ((8, 4), np.float32, 1e-5)]


def batchnorm_inference():
    """Exercise 4.2: Alg. 2 against torch's eval-mode F.batch_norm, 4 cases (one a
    single example, whose output must not depend on any other example)."""
    for i, (shape, dtype, eps) in enumerate(INFERENCE_CASES):
        r = _rng(42 + i)
        x, gamma, beta, _ = _fc_case(shape, dtype, seed=420 + i)
        d = shape[1]
        mean = r.normal(3.0, 1.0, d).astype(dtype)
        var = r.uniform(0.5, 2.0, d).astype(dtype)
        got = batchnorm.batchnorm_inference(x.copy(), gamma.copy(), beta.copy(),
                                            mean.copy(), var.copy(), eps)
        expected = F.batch_norm(_t(x), _t(mean), _t(var), _t(gamma), _t(beta),
                                training=False, eps=eps).numpy()
        x64, g, b, mu, s2 = (a.astype(np.float64) for a in (x, gamma, beta, mean, var))
        hints = [(g * (x64 - mu) / (np.sqrt(s2) + eps) + b, EPS_OUTSIDE),
                 (g * (x64 - mu) / (s2 + eps) + b, VAR_NOT_STD),
                 (g * (x64 - mu) / np.sqrt(s2 + eps), NO_BETA)]
        if shape[0] > 1:
            hints.append((g * (x64 - x64.mean(0)) / np.sqrt(x64.var(0) + eps) + b,
                          BATCH_STATS_INFERENCE))
        else:
            hints.append((np.broadcast_to(b, x.shape), BATCH_STATS_INFERENCE))
        label = f"{shape} {np.dtype(dtype).name} eps={eps:g}"
        _check(f"y {label}", got, expected, dtype, hints=hints,
               quiet=i < len(INFERENCE_CASES) - 1)
    _summary("batchnorm_inference", len(INFERENCE_CASES),
             "vs torch eval mode; one example alone; float32 and float64")


# -------------------------------------------------------- 4.3 the layers' switch

LAYER_CASES = [("BatchNorm1d", (32, 6), 0.1, np.float64),
               ("BatchNorm1d", (8, 4, 5), None, np.float32),
               ("BatchNorm2d", (4, 3, 5, 5), 0.3, np.float64)]


def _torch_layer(kind, c, momentum, dtype):
    cls = getattr(torch.nn, kind)
    return cls(c, momentum=momentum).to(torch.from_numpy(np.zeros(0, dtype)).dtype)


def layer_forward():
    """Exercise 4.3: BatchNorm1d/BatchNorm2d in train and eval mode against torch's
    layers: outputs, running statistics after each step (updated in place), eval mode
    with the population statistics, (N, C), (N, C, L) and (N, C, H, W) inputs."""
    for k, (kind, shape, momentum, dtype) in enumerate(LAYER_CASES):
        r = _rng(43 + k)
        c = shape[1]
        ours = getattr(batchnorm, kind)(c, momentum=momentum, dtype=dtype)
        ref = _torch_layer(kind, c, momentum, dtype)
        gamma = r.normal(1.0, 0.3, c).astype(dtype)
        beta = r.normal(0.0, 0.3, c).astype(dtype)
        ours.gamma[...] = gamma
        ours.beta[...] = beta
        with torch.no_grad():
            ref.weight.copy_(_t(gamma))
            ref.bias.copy_(_t(beta))
        kept_mean, kept_var = ours.running_mean, ours.running_var
        label = f"{kind} {shape} momentum={momentum} {np.dtype(dtype).name}"
        for step in range(1, 4):
            x = r.normal(step, 1.0 + step, shape).astype(dtype)
            before = ours.running_mean.copy(), ours.running_var.copy()
            running = F.batch_norm(_t(x), _t(before[0]), _t(before[1]), _t(gamma),
                                   _t(beta), training=False, eps=ours.eps).numpy()
            out = ours.forward(x.copy())
            expected = ref(_t(x)).detach().numpy()
            _check(f"train out, step {step}, {label}", out, expected, dtype,
                   quiet=True, hints=[(running, TRAIN_RUNNING_STATS)])
            for name, mine, old in (("running_mean", ours.running_mean, before[0]),
                                    ("running_var", ours.running_var, before[1])):
                _check(f"{name}, step {step}, {label}", mine,
                       getattr(ref, name).numpy(), dtype, quiet=True,
                       hints=[(old, STALE_RUNNING)])
        last = k == len(LAYER_CASES) - 1
        in_place = kept_mean is ours.running_mean and kept_var is ours.running_var
        if last or not in_place:
            check_true(f"running stats updated in place, {label}", in_place,
                       "keep the arrays: layer.running_mean[...] = new_mean, as torch "
                       "updates its buffers")
        ours.eval()
        ref.eval()
        for n in (5, 1):  # one example is fine in eval mode
            x = r.normal(2.0, 3.0, (n,) + shape[1:]).astype(dtype)
            before = ours.running_mean.copy(), ours.running_var.copy()
            out = ours.forward(x.copy())
            expected = ref(_t(x)).detach().numpy()
            hints = []
            if x.size // c > 1:
                batch = F.batch_norm(_t(x), None, None, _t(gamma), _t(beta),
                                     training=True, eps=ours.eps).numpy()
                hints = [(batch, EVAL_BATCH_STATS)]
            _check(f"eval out ({n} examples), {label}", out, expected, dtype,
                   quiet=not (last and n == 1), hints=hints)
            unchanged = bool(np.array_equal(before[0], ours.running_mean)
                             and np.array_equal(before[1], ours.running_var))
            if (last and n == 1) or not unchanged:
                check_true(f"eval leaves running stats unchanged, {label}", unchanged,
                           "eval mode only reads running_mean and running_var")
    _summary("layer forward", len(LAYER_CASES),
             "train and eval vs torch.nn.BatchNorm1d/2d, momentum 0.1, 0.3, None")


# ----------------------------------------------------------- 5.1, 5.2 spatial BN

SPATIAL_CASES = [((4, 3, 5, 6), np.float64, 1e-5), ((2, 3, 1, 1), np.float64, 0.1),
                 ((8, 4, 3, 3), np.float32, 1e-5)]


def _fc_bn64(rows, g, b, eps):
    mu, var = rows.mean(0), rows.var(0)
    return g * (rows - mu) / np.sqrt(var + eps) + b


def _spatial_hints(x, gamma, beta, eps):
    n, c, h, w = x.shape
    x64, g, b = (a.astype(np.float64) for a in (x, gamma, beta))
    no_t = _fc_bn64(x64.reshape(-1, c), g, b, eps).reshape(x.shape)
    gb = (g.reshape(1, c, 1, 1), b.reshape(1, c, 1, 1))
    per_loc = _fc_bn64(x64.reshape(n, -1), np.ones(c * h * w), np.zeros(c * h * w),
                       eps).reshape(x.shape) * gb[0] + gb[1]
    mu, var = x64.mean((2, 3), keepdims=True), x64.var((2, 3), keepdims=True)
    per_map = gb[0] * (x64 - mu) / np.sqrt(var + eps) + gb[1]
    hints = [(no_t, RESHAPE_NO_TRANSPOSE), (per_loc, PER_LOCATION)]
    if h * w > 1:
        hints.append((per_map, PER_EXAMPLE_MAP))
    return hints


def spatial_forward():
    """Exercise 5.1: spatial BN against torch's F.batch_norm on (N, C, H, W)."""
    for i, (shape, dtype, eps) in enumerate(SPATIAL_CASES):
        x, gamma, beta, _ = _fc_case(shape, dtype, seed=51 + i)
        out, cache = batchnorm.spatial_batchnorm_forward(x.copy(), gamma.copy(),
                                                         beta.copy(), eps)
        t_out, mu, var, _ = _torch_bn(x, gamma, beta, eps)
        label = f"{shape} {np.dtype(dtype).name} eps={eps:g}"
        quiet = i < len(SPATIAL_CASES) - 1
        _check(f"out {label}", out, t_out, dtype, quiet=quiet,
               hints=_spatial_hints(x, gamma, beta, eps))
        _check_statistics(label, cache, mu, var, dtype, quiet)
    _summary("spatial_batchnorm_forward", len(SPATIAL_CASES),
             "out, per-channel mu and var vs torch; float32 and float64")


def _rows(a):
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def spatial_backward():
    """Exercise 5.2: dx, dgamma, dbeta against torch autograd and finite differences
    (the cache is filled with torch's per-channel statistics)."""
    cases = SPATIAL_CASES + [((2, 3, 2, 2), np.float64, 1e-5)]
    for i, (shape, dtype, eps) in enumerate(cases):
        x, gamma, beta, dout = _fc_case(shape, dtype, seed=52 + i)
        cache = _cache_by_torch(_rows(x), gamma, eps)
        got = batchnorm.spatial_batchnorm_backward(dout.copy(), cache)
        if not isinstance(got, tuple) or len(got) != 3:
            raise AssertionError("spatial_batchnorm_backward must return (dx, dgamma, "
                                 f"dbeta), got {type(got).__name__}")
        label = f"{shape} {np.dtype(dtype).name} eps={eps:g}"
        c = shape[1]
        # a wrong answer: dout reshaped to rows, and dx back, without the transposes
        wrong = _torch_grads(_rows(x), gamma, beta, dout.reshape(-1, c), eps)
        hints = {q: [(a.reshape(shape) if q == "dx" else a, RESHAPE_NO_TRANSPOSE)]
                 for q, a in zip(("dx", "dgamma", "dbeta"), wrong, strict=True)}
        oracles = {"torch": _torch_grads(x, gamma, beta, dout, eps)}
        if i == len(cases) - 1:
            oracles["finite differences"] = _numeric_grads(x, gamma, beta, dout, eps)
        for q, g, e in zip(("dx", "dgamma", "dbeta"), got, oracles["torch"],
                           strict=True):
            _check(f"{q} vs torch {label}", g, e, dtype, hints=hints[q],
                   quiet=i < len(cases) - 1)
        for q, g, e in zip(("dx", "dgamma", "dbeta"), got,
                           oracles.get("finite differences", ()), strict=False):
            check_close(f"{q} vs finite differences {label}", g, e, rtol=1e-5,
                        atol=1e-7)
    _summary("spatial_batchnorm_backward", len(cases),
             "dx, dgamma, dbeta vs torch autograd and finite differences")
