"""Bad input gets a clear error naming the argument - never a silent number."""

import numpy as np
import pytest

import torch

from bn_helpers import batchnorm as bn
from bn_helpers import gradcheck as gc
from bn_helpers import models
from bn_helpers.checks import check_true
from bn_helpers.torch_bridge import NumpyBatchNorm1d

R = np.random.default_rng(0)
X = R.normal(size=(8, 3))
X4 = R.normal(size=(4, 3, 2, 2))
G, B = np.ones(3), np.zeros(3)
_, CACHE = bn.batchnorm_forward(X, G, B)
_, CACHE4 = bn.spatial_batchnorm_forward(X4, G, B)


def _in_place(a):
    a -= a.mean()
    return a * 1.0


def _nan(a, index):
    a = a.copy()
    a[index] = np.nan
    return a


def _with_buffer(name, value, mode="eval"):
    layer = bn.BatchNorm1d(4)
    layer.train(mode == "train")
    setattr(layer, name, value)
    return layer


def _f32(a):
    return a.astype(np.float32)


_, CACHE32 = bn.batchnorm_forward(np.float32([[1e10, 1.0], [-1e10, 2.0], [3e9, 0.0]]),
                                  np.ones(2, np.float32), np.zeros(2, np.float32))


def _inf(a, index):
    a = a.copy()
    a[index] = np.inf
    return a


CASES = [
    # (id, callable, exception, words the message must contain)
    (
        "x list",
        lambda: bn.batchnorm_forward(X.tolist(), G, B),
        TypeError,
        ["x", "ndarray"],
    ),
    (
        "x int dtype",
        lambda: bn.batchnorm_forward(X.astype(int), G, B),
        TypeError,
        ["x", "float32 or float64", "int64"],
    ),
    (
        "x float16",
        lambda: bn.batchnorm_forward(X.astype(np.float16), G, B),
        TypeError,
        ["x", "float16"],
    ),
    (
        "x 1-D",
        lambda: bn.batchnorm_forward(X[0], G, B),
        ValueError,
        ["x", "2-D", "(3,)"],
    ),
    ("x 3-D", lambda: bn.batchnorm_forward(X[None], G, B), ValueError, ["x", "2-D"]),
    (
        "x N=1",
        lambda: bn.batchnorm_forward(X[:1], G, B),
        ValueError,
        ["more than 1 value", "(1, 3)"],
    ),
    (
        "x NaN",
        lambda: bn.batchnorm_forward(_nan(X, (2, 1)), G, B),
        ValueError,
        ["x", "finite", "1 NaN/inf"],
    ),
    (
        "x inf",
        lambda: bn.batchnorm_forward(_inf(X, (0, 0)), G, B),
        ValueError,
        ["x", "finite"],
    ),
    (
        "x overflow",
        lambda: bn.batchnorm_forward(
            np.float32([[3e38] * 3, [-3e38] * 3]),
            G.astype(np.float32),
            B.astype(np.float32),
        ),
        ValueError,
        ["x", "too large", "float32"],
    ),
    (
        "x squares overflow",
        lambda: bn.batchnorm_forward(
            np.float32([[1e20] * 3, [-1e20] * 3]),
            G.astype(np.float32),
            B.astype(np.float32),
        ),
        ValueError,
        ["x", "too large"],
    ),
    (
        "dout overflow staged",
        lambda: bn.batchnorm_backward(np.full((8, 3), 1e308), CACHE),
        ValueError,
        ["dout", "too large"],
    ),
    (
        "layer dtype mismatch",
        lambda: bn.BatchNorm1d(3).forward(X.astype(np.float32)),
        TypeError,
        ["x", "float64", "float32"],
    ),
    (
        "check_true not a bool",
        lambda: check_true("claim", np.allclose),
        TypeError,
        ["condition", "bool"],
    ),
    (
        "numeric_gradient f in place",
        lambda: gc.numeric_gradient(_in_place, X.copy(), X),
        ValueError,
        ["f modified", "in place"],
    ),
    (
        "numeric_gradient f float32",
        lambda: gc.numeric_gradient(lambda a: a.astype(np.float32), X.copy(), X),
        TypeError,
        ["float64", "float32"],
    ),
    (
        "x np.matrix",
        lambda: bn.batchnorm_forward(np.asmatrix(X), G, B),
        TypeError,
        ["x", "matrix"],
    ),
    (
        "x masked",
        lambda: bn.batchnorm_forward(np.ma.masked_less(X, 0), G, B),
        TypeError,
        ["x", "MaskedArray"],
    ),
    (
        "x empty batch",
        lambda: bn.batchnorm_forward(np.zeros((0, 3)), G, B),
        ValueError,
        ["x", "no values", "(0, 3)"],
    ),
    (
        "gamma wrong shape",
        lambda: bn.batchnorm_forward(X, np.ones(4), B),
        ValueError,
        ["gamma", "(3,)", "(4,)"],
    ),
    (
        "beta wrong shape",
        lambda: bn.batchnorm_forward(X, G, np.zeros((1, 3))),
        ValueError,
        ["beta", "(3,)", "(1, 3)"],
    ),
    (
        "gamma int",
        lambda: bn.batchnorm_forward(X, np.ones(3, int), B),
        TypeError,
        ["gamma"],
    ),
    (
        "gamma NaN",
        lambda: bn.batchnorm_forward(X, _nan(G, 0), B),
        ValueError,
        ["gamma", "finite"],
    ),
    (
        "eps zero",
        lambda: bn.batchnorm_forward(X, G, B, eps=0),
        ValueError,
        ["eps", "> 0"],
    ),
    (
        "eps negative",
        lambda: bn.batchnorm_forward(X, G, B, eps=-1e-5),
        ValueError,
        ["eps"],
    ),
    (
        "eps string",
        lambda: bn.batchnorm_forward(X, G, B, eps="1e-5"),
        TypeError,
        ["eps"],
    ),
    (
        "eps nan",
        lambda: bn.batchnorm_forward(X, G, B, eps=float("nan")),
        ValueError,
        ["eps"],
    ),
    (
        "dout wrong shape",
        lambda: bn.batchnorm_backward(np.ones((8, 4)), CACHE),
        ValueError,
        ["dout", "(8, 3)", "(8, 4)"],
    ),
    (
        "dout wrong shape alt",
        lambda: bn.batchnorm_backward_alt(np.ones((7, 3)), CACHE),
        ValueError,
        ["dout", "(8, 3)"],
    ),
    (
        "dout NaN staged",
        lambda: bn.batchnorm_backward(_nan(X, (1, 1)), CACHE),
        ValueError,
        ["dout", "finite"],
    ),
    (
        "dout NaN alt",
        lambda: bn.batchnorm_backward_alt(_nan(X, (1, 1)), CACHE),
        ValueError,
        ["dout", "finite"],
    ),
    (
        "dout int",
        lambda: bn.batchnorm_backward_alt(np.ones((8, 3), int), CACHE),
        TypeError,
        ["dout"],
    ),
    (
        "cache tuple",
        lambda: bn.batchnorm_backward(X, (X, G)),
        TypeError,
        ["cache", "BNCache"],
    ),
    (
        "cache from conv",
        lambda: bn.batchnorm_backward_alt(X4, CACHE4),
        ValueError,
        ["cache", "spatial_batchnorm_forward"],
    ),
    (
        "conv cache from fc",
        lambda: bn.spatial_batchnorm_backward(X, CACHE),
        ValueError,
        ["cache", "batchnorm_forward"],
    ),
    (
        "spatial x 2-D",
        lambda: bn.spatial_batchnorm_forward(X, G, B),
        ValueError,
        ["x", "4-D"],
    ),
    (
        "spatial one value",
        lambda: bn.spatial_batchnorm_forward(X4[:1, :, :1, :1], G, B),
        ValueError,
        ["more than 1 value"],
    ),
    (
        "spatial gamma",
        lambda: bn.spatial_batchnorm_forward(X4, np.ones(2), B),
        ValueError,
        ["gamma", "(3,)"],
    ),
    (
        "inference negative var",
        lambda: bn.batchnorm_inference(X, G, B, np.zeros(3), -np.ones(3)),
        ValueError,
        ["var", ">= 0"],
    ),
    (
        "inference mean shape",
        lambda: bn.batchnorm_inference(X, G, B, np.zeros(2), np.ones(3)),
        ValueError,
        ["mean", "(3,)"],
    ),
    (
        "inference x NaN",
        lambda: bn.batchnorm_inference(_nan(X, (0, 0)), G, B, B, G),
        ValueError,
        ["x", "finite"],
    ),
    (
        "layer momentum > 1",
        lambda: bn.BatchNorm1d(3, momentum=1.5),
        ValueError,
        ["momentum", "[0, 1]"],
    ),
    (
        "layer momentum < 0",
        lambda: bn.BatchNorm1d(3, momentum=-0.1),
        ValueError,
        ["momentum"],
    ),
    (
        "layer momentum string",
        lambda: bn.BatchNorm1d(3, momentum="0.1"),
        TypeError,
        ["momentum"],
    ),
    (
        "layer features 0",
        lambda: bn.BatchNorm1d(0),
        ValueError,
        ["num_features", ">= 1"],
    ),
    ("layer features float", lambda: bn.BatchNorm2d(3.0), TypeError, ["num_features"]),
    ("layer eps", lambda: bn.BatchNorm1d(3, eps=0.0), ValueError, ["eps"]),
    ("layer dtype", lambda: bn.BatchNorm1d(3, dtype=np.int32), TypeError, ["dtype"]),
    (
        "layer wrong features",
        lambda: bn.BatchNorm1d(4).forward(X),
        ValueError,
        ["x", "4 features", "(8, 3)"],
    ),
    (
        "layer N=1 training",
        lambda: bn.BatchNorm1d(3).forward(X[:1]),
        ValueError,
        ["more than 1 value"],
    ),
    (
        "layer backward first",
        lambda: bn.BatchNorm1d(3).backward(X),
        RuntimeError,
        ["before forward"],
    ),
    (
        "rel_error shapes",
        lambda: gc.rel_error(np.ones(3), np.ones(4)),
        ValueError,
        ["shape"],
    ),
    (
        "numeric_gradient float32",
        lambda: gc.numeric_gradient(lambda a: a, X.astype(np.float32), X),
        TypeError,
        ["x", "float64"],
    ),
    (
        "numeric_gradient dout shape",
        lambda: gc.numeric_gradient(lambda a: a, X.copy(), np.ones(3)),
        ValueError,
        ["dout", "(8, 3)"],
    ),
    (
        "numeric_gradient h",
        lambda: gc.numeric_gradient(lambda a: a, X.copy(), X, h=0),
        ValueError,
        ["h"],
    ),
    (
        "numeric_partial index",
        lambda: gc.numeric_partial(lambda a: a.sum(), X.copy(), (9, 0)),
        IndexError,
        ["index", "(8, 3)"],
    ),
    # issue 11's six bugs, then the rest of the layer contract and the new modules
    (
        "bug 1: running_mean of the wrong shape",
        lambda: _with_buffer("running_mean", np.zeros(3)).forward(np.zeros((2, 4))),
        ValueError,
        ["running_mean", "(4,)", "(3,)"],
    ),
    (
        "bug 1: running_var a list",
        lambda: _with_buffer("running_var", [1.0] * 4).forward(np.zeros((2, 4))),
        ValueError,
        ["running_var", "list"],
    ),
    (
        "bug 1: gamma of the wrong dtype, training",
        lambda: _with_buffer("gamma", np.ones(4, np.float32), "train").forward(
            np.zeros((2, 4))),
        ValueError,
        ["gamma", "float64", "float32"],
    ),
    (
        "bug 2: train('False')",
        lambda: bn.BatchNorm1d(4).train("False"),
        ValueError,
        ["mode", "True or False", "'False'"],
    ),
    (
        "bug 2: train(None)",
        lambda: bn.BatchNorm2d(4).train(None),
        ValueError,
        ["mode", "boolean", "None"],
    ),
    (
        "bug 3: eps vanishes in float32",
        lambda: bn.batchnorm_forward(_f32(X), _f32(G), _f32(B), eps=1e-50),
        ValueError,
        ["eps", "rounds to 0", "float32"],
    ),
    (
        "bug 3: eps vanishes in a float32 layer",
        lambda: bn.BatchNorm2d(3, eps=1e-50, dtype=np.float32),
        ValueError,
        ["eps", "rounds to 0"],
    ),
    (
        "bug 3: eps vanishes in float32 inference",
        lambda: bn.batchnorm_inference(_f32(X), _f32(G), _f32(B), _f32(B), _f32(G),
                                       eps=1e-60),
        ValueError,
        ["eps", "float32"],
    ),
    (
        "bug 4: float32 dgamma/dx overflow, staged",
        lambda: bn.batchnorm_backward(np.full((3, 2), 1e30, np.float32), CACHE32),
        ValueError,
        ["dout", "too large", "float32"],
    ),
    (
        "bug 4: float32 dgamma/dx overflow, closed form",
        lambda: bn.batchnorm_backward_alt(np.full((3, 2), 1e30, np.float32), CACHE32),
        ValueError,
        ["dout", "too large", "float32"],
    ),
    (
        "bug 5: torch dtype",
        lambda: bn.BatchNorm1d(4, dtype=torch.float32),
        TypeError,
        ["dtype", "np.float32", "torch.float32"],
    ),
    (
        "bug 6: numeric_gradient of an empty x",
        lambda: gc.numeric_gradient(lambda a: a, np.zeros((0, 3)), np.zeros((0, 3))),
        ValueError,
        ["x", "at least one value", "(0, 3)"],
    ),
    ("layer affine", lambda: bn.BatchNorm1d(3, affine=1), TypeError, ["affine"]),
    (
        "layer track_running_stats",
        lambda: bn.BatchNorm1d(3, track_running_stats="no"),
        TypeError,
        ["track_running_stats"],
    ),
    (
        "BatchNorm1d 4-D input",
        lambda: bn.BatchNorm1d(3).forward(X4),
        ValueError,
        ["x", "(N, C, L)", "(4, 3, 2, 2)"],
    ),
    (
        "BatchNorm2d 2-D input",
        lambda: bn.BatchNorm2d(3).forward(X),
        ValueError,
        ["x", "(N, C, H, W)", "(8, 3)"],
    ),
    (
        "load_state_dict missing key",
        lambda: bn.BatchNorm1d(3).load_state_dict({"weight": np.ones(3)}),
        RuntimeError,
        ["missing", "running_var"],
    ),
    (
        "load_state_dict unexpected key",
        lambda: bn.BatchNorm1d(3, affine=False).load_state_dict(
            torch.nn.BatchNorm1d(3).state_dict()),
        RuntimeError,
        ["unexpected", "weight"],
    ),
    (
        "load_state_dict wrong shape",
        lambda: bn.BatchNorm1d(3).load_state_dict(torch.nn.BatchNorm1d(4).state_dict()),
        ValueError,
        ["size mismatch", "weight", "(4,)", "(3,)"],
    ),
    (
        "load_state_dict not a mapping",
        lambda: bn.BatchNorm1d(3).load_state_dict([1, 2]),
        TypeError,
        ["state_dict", "list"],
    ),
    (
        "layer backward dout shape",
        lambda: (lambda layer: (layer.forward(X), layer.backward(X[:4])))(
            bn.BatchNorm1d(3)),
        ValueError,
        ["dout", "(8, 3)", "(4, 3)"],
    ),
    (
        "update_running_stats m=1",
        lambda: bn.update_running_stats(B, G, B, G, 1, 0.1),
        ValueError,
        ["m", ">= 2", "m - 1"],
    ),
    (
        "update_running_stats batch_mean shape",
        lambda: bn.update_running_stats(B, G, np.zeros(4), G, 8, 0.1),
        ValueError,
        ["batch_mean", "(3,)", "(4,)"],
    ),
    (
        "update_running_stats momentum",
        lambda: bn.update_running_stats(B, G, B, G, 8, 2.0),
        ValueError,
        ["momentum", "[0, 1]"],
    ),
    (
        "update_running_stats running_var shape",
        lambda: bn.update_running_stats(B, np.ones(2), B, G, 8, 0.1),
        ValueError,
        ["running_var", "(3,)", "(2,)"],
    ),
    (
        "spatial backward cache of another x",
        lambda: bn.spatial_batchnorm_backward(X4[:2], CACHE4),
        ValueError,
        ["dout", "cache", "spatial_batchnorm_forward"],
    ),
    (
        "build_mlp bn_impl",
        lambda: models.build_mlp((4, 3, 2), batchnorm=True, init_std=0.1, seed=0,
                                 bn_impl="mine"),
        ValueError,
        ["bn_impl", "'mine'", "numpy"],
    ),
    (
        "NumpyBatchNorm1d 3-D input",
        lambda: NumpyBatchNorm1d(3)(torch.zeros(4, 3, 2)),
        ValueError,
        ["x", "2-D", "(4, 3, 2)"],
    ),
    (
        "NumpyBatchNorm1d dtype",
        lambda: NumpyBatchNorm1d(3)(torch.zeros(4, 3, dtype=torch.float64)),
        TypeError,
        ["dtype", "torch.float32", "torch.float64"],
    ),
    (
        "NumpyBatchNorm1d momentum",
        lambda: NumpyBatchNorm1d(3, momentum=-1.0),
        ValueError,
        ["momentum"],
    ),
]


@pytest.mark.parametrize(
    "call,exc,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_raises_clear_error(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    for w in words:
        assert w in msg, f"message {msg!r} should mention {w!r}"


def test_enough_cases():
    assert len(CASES) >= 25
