"""parallel.run_all gives what the plain loop gives, bit for bit, in the jobs' order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bn_helpers import models, parallel, training
from bn_helpers.data import load_mnist


@pytest.fixture(scope="module")
def mnist():
    x, y = load_mnist("train", n=2000, seed=0)
    return x, y


def _train(mnist, job):
    x, y = mnist
    batchnorm, seed = job
    net = models.build_mlp(batchnorm=batchnorm, init_std=0.1, seed=seed)
    h = training.train(net, x, y, eval_x=x[:200], eval_y=y[:200], probe_x=x[:100],
                       lr=0.5, steps=60, seed=seed, batch_size=20, record_every=20,
                       progress=False)
    return h, net


def test_training_in_workers_is_the_loop_bit_for_bit(mnist):
    jobs = [(False, 0), (True, 0), (True, 1)]
    loop = [_train(mnist, job) for job in jobs]
    forked = parallel.run_all(lambda job: _train(mnist, job), jobs, processes=2,
                              progress=False)
    assert len(forked) == len(jobs)
    for (h0, net0), (h1, net1) in zip(loop, forked, strict=True):
        assert np.array_equal(h0.loss, h1.loss)
        assert np.array_equal(h0.test_accuracy, h1.test_accuracy)
        for a, b in zip(h0.percentiles, h1.percentiles, strict=True):
            assert np.array_equal(a, b)
        s0, s1 = net0.state_dict(), net1.state_dict()
        assert s0.keys() == s1.keys()
        assert all(torch.equal(s0[k], s1[k]) for k in s0)


def test_order_closures_and_one_process():
    jobs = list(range(7))
    offset = 100
    for processes in (1, 2, 3):
        got = parallel.run_all(lambda j: (j, j * j + offset), jobs,
                               processes=processes, progress=False)
        assert got == [(j, j * j + offset) for j in jobs]
    assert parallel.run_all(abs, [], progress=False) == []


def test_an_error_in_a_worker_is_raised_here():
    def fail(j):
        if j == 2:
            raise ValueError("job 2 is broken")
        return j

    with pytest.raises(ValueError, match="job 2 is broken"):
        parallel.run_all(fail, [0, 1, 2, 3], processes=2, progress=False)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(fn=3, jobs=[1]), TypeError, "fn must be callable, got int"),
    (dict(fn=abs, jobs="abc"), TypeError, "jobs must be a sequence"),
    (dict(fn=abs, jobs={1, 2}), TypeError, "jobs must be a sequence .* got set"),
    (dict(fn=abs, jobs=[1], processes=0), ValueError, "processes must be a positive "
                                                      "int, got 0"),
    (dict(fn=abs, jobs=[1], processes=True), ValueError, "processes must be"),
])
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        parallel.run_all(progress=False, **kwargs)
