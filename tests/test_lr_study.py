"""lr_study.lr_sweep: one training.train run per (net, learning rate), same start."""

import numpy as np
import pytest

from bn_helpers import lr_study, models, training
from bn_helpers.data import load_mnist


@pytest.fixture(scope="module")
def data():
    x, y = load_mnist("train", n=300, seed=0)
    xt, yt = load_mnist("test", n=100, seed=1)
    return x, y, xt, yt


def test_grid_is_log_spaced_from_005_to_1000():
    grid = np.array(lr_study.LR_GRID)
    assert grid[0] == 0.05 and grid[-1] == 1000.0 and len(grid) == 10
    np.testing.assert_allclose(np.diff(np.log(grid)), np.log(20000) / 9, rtol=0.01)
    assert [lr_study.lr_label(lr) for lr in grid[[0, 2, -3, -1]]] == [
        "0.05", "0.452", "111", "1000"]


def test_sweep_matches_single_runs(data):
    x, y, xt, yt = data
    sweep = lr_study.lr_sweep(x, y, eval_x=xt, eval_y=yt, lrs=[0.5, 5.0], steps=20,
                              record_every=10, seed=3, progress=False)
    assert sweep.loss["BN"].shape == (2, 20) and sweep.steps.tolist() == [0, 10, 20]
    for label, batchnorm in lr_study.NETS.items():
        net = models.build_mlp(batchnorm=batchnorm, init_std=0.1, seed=3)
        h = training.train(net, x, y, eval_x=xt, eval_y=yt, probe_x=xt, lr=5.0,
                           steps=20, seed=3, record_every=10, progress=False)
        np.testing.assert_array_equal(sweep.loss[label][1], h.loss)
        np.testing.assert_array_equal(sweep.test_accuracy[label][1], h.test_accuracy)
        np.testing.assert_array_equal(sweep.final_accuracy(label),
                                      sweep.test_accuracy[label][:, -1])
    # different learning rates give different runs
    assert not np.array_equal(sweep.loss["BN"][0], sweep.loss["BN"][1])


def test_bad_arguments(data):
    x, y, xt, yt = data
    kw = {"eval_x": xt, "eval_y": yt, "steps": 10, "record_every": 10, "seed": 0,
          "progress": False}
    with pytest.raises(ValueError, match="increasing"):
        lr_study.lr_sweep(x, y, lrs=[1.0, 0.5], **kw)
    with pytest.raises(ValueError, match=r"lrs\[0\]"):
        lr_study.lr_sweep(x, y, lrs=[-1.0, 0.5], **kw)
    with pytest.raises(TypeError, match="lrs"):
        lr_study.lr_sweep(x, y, lrs=1.0, **kw)
    with pytest.raises(TypeError, match="seed"):
        lr_study.lr_sweep(x, y, lrs=[0.1, 1.0], **{**kw, "seed": "0"})
    sweep = lr_study.lr_sweep(x, y, lrs=[0.1, 1.0], **kw)
    with pytest.raises(ValueError, match="net"):
        sweep.final_accuracy("BN net")
