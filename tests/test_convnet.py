"""bn_helpers.convnet: stacked seeds are independent nets; ghost BN is BN per chunk."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bn_helpers import convnet
from bn_helpers.data import load_mnist


@pytest.fixture(scope="module")
def data():
    return load_mnist("train", n=400, seed=0, flatten=False)


@pytest.mark.parametrize("norm", ["bn", "gn", "ln", "in", "none"])
def test_a_seed_trains_the_same_alone_or_stacked(data, norm):
    x, y = data
    stacked = convnet.StackedConvNet(norm, (4, 7))
    alone = convnet.StackedConvNet(norm, (7,))
    both = convnet.train_stacked(stacked, x, y, batch_size=8, steps=6, lr=0.1,
                                 seeds=(4, 7))
    one = convnet.train_stacked(alone, x, y, batch_size=8, steps=6, lr=0.1, seeds=(7,))
    np.testing.assert_allclose(both[:, 1], one[:, 0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(both[:, 0], both[:, 1])  # seeds differ
    acc_both = convnet.evaluate(stacked, x[:50], y[:50])
    acc_one = convnet.evaluate(alone, x[:50], y[:50])
    assert abs(acc_both[1] - acc_one[0]) <= 1 / 50 + 1e-9


def test_group_norm_stays_inside_a_seed():
    torch.manual_seed(0)
    net = convnet.StackedConvNet("gn", (0, 1))
    z = torch.randn(3, 16, 5, 5)  # 2 seeds x 8 channels
    got = net.norm1(z)
    for s in range(2):
        ref = F.group_norm(z[:, 8 * s: 8 * s + 8], convnet.GN_GROUPS)
        torch.testing.assert_close(got[:, 8 * s: 8 * s + 8], ref, rtol=1e-5, atol=1e-6)


def test_ghost_bn_is_bn_per_chunk():
    torch.manual_seed(0)
    gbn = convnet.GhostBatchNorm2d(3, ghost=4)
    with torch.no_grad():
        gbn.weight.uniform_(0.5, 2)
        gbn.bias.normal_()
    x = torch.randn(12, 3, 4, 4) * 3 + 1
    got = gbn(x)
    for i in range(3):
        ref = F.batch_norm(x[4 * i: 4 * i + 4], None, None, gbn.weight, gbn.bias,
                           training=True)
        torch.testing.assert_close(got[4 * i: 4 * i + 4], ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of ghost"):
        gbn(torch.randn(10, 3, 4, 4))
    full = convnet.GhostBatchNorm2d(3, ghost=12)
    torch.testing.assert_close(full(x), F.batch_norm(x, None, None, full.weight,
                                                     full.bias, training=True))


def test_evaluate_leaves_running_stats_alone(data):
    x, y = data
    net = convnet.StackedConvNet("bn", (0,))
    convnet.train_stacked(net, x, y, batch_size=8, steps=3, lr=0.1, seeds=(0,))
    before = net.norm1.running_mean.clone()
    convnet.evaluate(net, x[:20], y[:20], batch_size=4, train_mode=True)
    torch.testing.assert_close(net.norm1.running_mean, before)


def test_bad_arguments():
    with pytest.raises(ValueError, match="norm"):
        convnet.StackedConvNet("batch", (0,))
    with pytest.raises(ValueError, match="placement"):
        convnet.StackedConvNet("bn", (0,), placement="middle")
    net = convnet.StackedConvNet("bn", (0, 1))
    with pytest.raises(ValueError, match="seeds"):
        convnet.train_stacked(net, np.zeros((4, 28, 28), np.float32), np.zeros(4, int),
                              batch_size=2, steps=1, lr=0.1, seeds=(0,))
