"""Each typical mistake, put into bn_helpers.batchnorm, fails its visible check.

The mistakes are written as a learner would write them and monkeypatched into the
module; bn_helpers.verify looks functions up at call time, so it checks the patched one.
Where verify recognises a mistake, its one-line diagnosis must be in the error.
"""

import numpy as np
import pytest

from bn_helpers import batchnorm as bn
from bn_helpers import verify

# ----------------------------------------------------------- mistakes, as written


def forward_eps_outside_sqrt(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    xc = x - mu
    var = (xc**2).mean(axis=0)
    std = np.sqrt(var) + eps  # the mistake
    x_hat = xc / std
    out = gamma * x_hat + beta
    return out, bn.BNCache(x_hat=x_hat, mu=mu, var=var, inv_std=1 / std, gamma=gamma,
                           eps=eps)


def forward_unbiased_variance(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0, ddof=1)  # the mistake
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = (x - mu) * inv_std
    return gamma * x_hat + beta, bn.BNCache(x_hat=x_hat, mu=mu, var=var,
                                            inv_std=inv_std, gamma=gamma, eps=eps)


def backward_without_mu_branch(dout, cache):
    xc, std, inv_std, m = cache.x_centered, cache.std, cache.inv_std, cache.m
    dbeta = dout.sum(axis=0)
    dgamma = (dout * cache.x_hat).sum(axis=0)
    dx_hat = cache.gamma * dout
    dinv_std = (dx_hat * xc).sum(axis=0)
    dxc = dx_hat * inv_std
    dvar = -dinv_std / std**2 / (2 * std)
    dxc = dxc + 2 * xc * dvar / m
    return dxc, dgamma, dbeta  # the mistake: dx = dxc + dmu / m


def backward_without_var_branch(dout, cache):
    dbeta = dout.sum(axis=0)
    dgamma = (dout * cache.x_hat).sum(axis=0)
    dxc = cache.gamma * dout * cache.inv_std  # the mistake: no term through sigma2
    dx = dxc - dxc.sum(axis=0) / cache.m
    return dx, dgamma, dbeta


def backward_alt_dgamma_wrong_axis(dout, cache):
    m, x_hat = cache.m, cache.x_hat
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=1)  # the mistake
    dx = cache.gamma * cache.inv_std / m * (
        m * dout - dbeta - x_hat * (dout * x_hat).sum(axis=0))
    return dx, dgamma, dbeta


def running_stats_biased(running_mean, running_var, batch_mean, batch_var, m,
                         momentum):
    new_mean = (1 - momentum) * running_mean + momentum * batch_mean
    new_var = (1 - momentum) * running_var + momentum * batch_var  # the mistake
    return new_mean, new_var


def running_stats_reversed(running_mean, running_var, batch_mean, batch_var, m,
                           momentum):
    unbiased = batch_var * m / (m - 1)
    new_mean = momentum * running_mean + (1 - momentum) * batch_mean  # the mistake
    new_var = momentum * running_var + (1 - momentum) * unbiased
    return new_mean, new_var


def inference_eps_outside_sqrt(x, gamma, beta, mean, var, eps=1e-5):
    scale = gamma / (np.sqrt(var) + eps)  # the mistake
    return x * scale + (beta - mean * scale)


def inference_batch_statistics(x, gamma, beta, mean, var, eps=1e-5):
    return bn.batchnorm_forward(x, gamma, beta, eps)[0]  # the mistake


def spatial_no_transpose(x, gamma, beta, eps=1e-5):
    c = x.shape[1]
    out_rows, cache = bn.batchnorm_forward(x.reshape(-1, c), gamma, beta, eps)
    return out_rows.reshape(x.shape), cache  # the mistake: rows mix channels


def spatial_per_location(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)  # the mistake: statistics over N only
    var = x.var(axis=0)
    x_hat = (x - mu) / np.sqrt(var + eps)
    out = gamma[:, None, None] * x_hat + beta[:, None, None]
    return out, bn.BNCache(x_hat=x_hat, mu=mu, var=var, inv_std=1 / np.sqrt(var + eps),
                           gamma=gamma, eps=eps)


def spatial_backward_no_transpose(dout, cache):
    c = dout.shape[1]
    dx_rows, dgamma, dbeta = bn.batchnorm_backward_alt(dout.reshape(-1, c), cache)
    return dx_rows.reshape(dout.shape), dgamma, dbeta  # the mistake


def layer_forward_eval_batch_stats(self, x):
    rows = self._rows(x)
    momentum = self._momentum_of_this_step()
    out, self.cache = bn.batchnorm_forward(rows, self.gamma, self.beta, self.eps)
    self._last = (True, x.shape, rows)
    if self.training:
        new = bn.update_running_stats(self.running_mean, self.running_var,
                                      self.cache.mu, self.cache.var, self.cache.m,
                                      momentum)
        self.running_mean[...], self.running_var[...] = new
    return bn._from_rows(out, x.shape)  # the mistake: batch statistics in eval too


def layer_forward_not_in_place(self, x):
    rows = self._rows(x)
    self._last = (self.training, x.shape, rows)
    momentum = self._momentum_of_this_step()
    if self.training:
        out, self.cache = bn.batchnorm_forward(rows, self.gamma, self.beta, self.eps)
        self.running_mean, self.running_var = bn.update_running_stats(  # the mistake
            self.running_mean, self.running_var, self.cache.mu, self.cache.var,
            self.cache.m, momentum)
    else:
        out = bn.batchnorm_inference(rows, self.gamma, self.beta, self.running_mean,
                                     self.running_var, self.eps)
    return bn._from_rows(out, x.shape)


# (check, name in bn_helpers.batchnorm, wrong function, diagnosis or None)
MISTAKES = [
    ("batchnorm_forward", "batchnorm_forward", forward_eps_outside_sqrt,
     verify.EPS_OUTSIDE),
    ("batchnorm_forward", "batchnorm_forward", forward_unbiased_variance,
     verify.UNBIASED_FORWARD),
    ("batchnorm_backward", "batchnorm_backward", backward_without_mu_branch,
     verify.NO_MU_BRANCH),
    ("batchnorm_backward", "batchnorm_backward", backward_without_var_branch,
     verify.NO_VAR_BRANCH),
    ("batchnorm_backward_alt", "batchnorm_backward_alt", backward_alt_dgamma_wrong_axis,
     verify.WRONG_AXIS_SUM.format(name="dgamma")),
    ("update_running_stats", "update_running_stats", running_stats_biased,
     verify.BIASED_RUNNING),
    ("update_running_stats", "update_running_stats", running_stats_reversed,
     verify.REVERSED),
    ("batchnorm_inference", "batchnorm_inference", inference_eps_outside_sqrt,
     verify.EPS_OUTSIDE),
    ("batchnorm_inference", "batchnorm_inference", inference_batch_statistics,
     verify.BATCH_STATS_INFERENCE),
    ("spatial_forward", "spatial_batchnorm_forward", spatial_no_transpose,
     verify.RESHAPE_NO_TRANSPOSE),
    ("spatial_forward", "spatial_batchnorm_forward", spatial_per_location,
     verify.PER_LOCATION),
    ("spatial_backward", "spatial_batchnorm_backward", spatial_backward_no_transpose,
     verify.RESHAPE_NO_TRANSPOSE),
    ("layer_forward", "_BatchNorm.forward", layer_forward_eval_batch_stats,
     verify.EVAL_BATCH_STATS),
    ("layer_forward", "_BatchNorm.forward", layer_forward_not_in_place, None),
]


def _patch(monkeypatch, name, fn):
    if name == "_BatchNorm.forward":
        monkeypatch.setattr(bn._BatchNorm, "forward", fn)
    else:
        monkeypatch.setattr(bn, name, fn)


@pytest.mark.parametrize("check,name,wrong,diagnosis", MISTAKES,
                         ids=[m[2].__name__ for m in MISTAKES])
def test_mistake_fails_its_check_with_its_diagnosis(monkeypatch, check, name, wrong,
                                                     diagnosis):
    _patch(monkeypatch, name, wrong)
    with pytest.raises(AssertionError) as info:
        getattr(verify, check)()
    if diagnosis is not None:
        first_line = str(info.value).splitlines()[0]
        assert diagnosis in first_line


# ------------------------------------------------------------------- the stubs

STUBS = [("2.1", "batchnorm_forward", "batchnorm_forward", "02"),
         ("3.7", "batchnorm_backward", "batchnorm_backward", "03"),
         ("3.8", "batchnorm_backward_alt", "batchnorm_backward_alt", "03"),
         ("4.1", "update_running_stats", "update_running_stats", "04"),
         ("4.2", "batchnorm_inference", "batchnorm_inference", "04"),
         ("4.3", "layer_forward", "_BatchNorm.forward", "04"),
         ("5.1", "spatial_forward", "spatial_batchnorm_forward", "05"),
         ("5.2", "spatial_backward", "spatial_batchnorm_backward", "05")]


@pytest.mark.parametrize("number,check,name,notebook", STUBS, ids=[s[0] for s in STUBS])
def test_stub_fails_its_check(monkeypatch, number, check, name, notebook):
    message = (f"Exercise {number}: {name}: implement it in bn_helpers/batchnorm.py "
               f"(notebook {notebook})")

    def stub(*args, **kwargs):
        raise NotImplementedError(message)

    _patch(monkeypatch, name, stub)
    with pytest.raises(NotImplementedError, match=f"Exercise {number}"):
        getattr(verify, check)()


@pytest.mark.parametrize("check", verify.__all__)
def test_every_check_passes_on_a_correct_module(check, capsys):
    getattr(verify, check)()
    assert "all" in capsys.readouterr().out


def test_spatial_backward_checks_cannot_pass_with_a_zero_gradient(monkeypatch):
    monkeypatch.setattr(bn, "spatial_batchnorm_backward",
                        lambda dout, cache: (0 * dout, cache.gamma * 0,
                                             cache.gamma * 0))
    with pytest.raises(AssertionError):
        verify.spatial_backward()
