"""bn_helpers.norms: LayerNorm and GroupNorm forward/backward against torch autograd."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bn_helpers import norms


def torch_ref(fn, x, gamma, beta, dout):
    t = [torch.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    out = fn(*t)
    out.backward(torch.from_numpy(dout))
    return out.detach().numpy(), *(a.grad.numpy() for a in t)


@pytest.mark.parametrize("shape", [(4, 7), (2, 30), (16, 3)])
def test_layer_norm_matches_torch(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=shape)
    gamma, beta = rng.normal(size=shape[1]), rng.normal(size=shape[1])
    dout = rng.normal(size=shape)
    out, cache = norms.layer_norm_forward(x, gamma, beta)
    dx, dgamma, dbeta = norms.layer_norm_backward(dout, cache)
    ref = torch_ref(lambda a, g, b: F.layer_norm(a, (shape[1],), g, b, eps=1e-5),
                    x, gamma, beta, dout)
    for got, want in zip((out, dx, dgamma, dbeta), ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("groups", [1, 2, 6])  # LayerNorm, GroupNorm, InstanceNorm
def test_group_norm_matches_torch(groups):
    rng = np.random.default_rng(groups)
    x = rng.normal(-1.0, 2.0, size=(3, 6, 4, 5))
    gamma, beta = rng.normal(size=6), rng.normal(size=6)
    dout = rng.normal(size=x.shape)
    out, cache = norms.group_norm_forward(x, gamma, beta, groups)
    dx, dgamma, dbeta = norms.group_norm_backward(dout, cache)
    ref = torch_ref(lambda a, g, b: F.group_norm(a, groups, g, b, eps=1e-5),
                    x, gamma, beta, dout)
    for got, want in zip((out, dx, dgamma, dbeta), ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_group_norm_does_not_depend_on_the_batch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4, 3, 3))
    ones, zeros = np.ones(4), np.zeros(4)
    whole, _ = norms.group_norm_forward(x, ones, zeros, 2)
    alone, _ = norms.group_norm_forward(x[2:3], ones, zeros, 2)
    np.testing.assert_allclose(alone[0], whole[2], rtol=1e-12, atol=1e-12)


def test_bad_input():
    x = np.zeros((2, 6, 3, 3))
    with pytest.raises(ValueError, match="groups must divide"):
        norms.group_norm_forward(x, np.ones(6), np.zeros(6), 4)
    with pytest.raises(ValueError, match="gamma"):
        norms.layer_norm_forward(np.zeros((2, 3)), np.ones(4), np.zeros(3))
    with pytest.raises(TypeError, match="x must be a numpy"):
        norms.layer_norm_forward([[1.0, 2.0]], np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match="at least 2 values"):
        norms.layer_norm_forward(np.zeros((3, 1)), np.ones(1), np.zeros(1))
    _, cache = norms.layer_norm_forward(np.eye(3), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="dout"):
        norms.layer_norm_backward(np.zeros((2, 3)), cache)
    with pytest.raises(TypeError, match="cache"):
        norms.layer_norm_backward(np.zeros((3, 3)), None)
