"""ics_dashboard records what it says (torch as the oracle), its figures read at
notebook width, and widgets.ics_dashboard switches pictures in the browser."""

import copy

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ipywidgets.widgets.widget import _instances
from ipywidgets.widgets.widget_link import Link

from bn_helpers import ics_dashboard as dash
from bn_helpers import models, plots, training, widgets
from bn_helpers.data import load_mnist

SIZES = (784, 20, 20, 20, 10)
LR, STEPS = 0.5, 6


@pytest.fixture(scope="module")
def data():
    x, y = load_mnist("train", n=300, seed=0)
    xt, yt = load_mnist("test", n=200, seed=1)
    return x, y, xt, yt


def _record(data, batchnorm, init_std, seed=0):
    x, y, xt, yt = data
    net = models.build_mlp(SIZES, batchnorm=batchnorm, init_std=init_std, seed=seed)
    start = copy.deepcopy(net)
    trace = dash.record(net, x, y, eval_x=xt, eval_y=yt, probe_x=xt[:100],
                        probe_y=yt[:100], lr=LR, steps=STEPS,
                        checkpoints=np.array([0, 2, STEPS]), seed=seed,
                        init_std=init_std, progress=False)
    return start, net, trace


@pytest.fixture(scope="module")
def runs(data):
    return {(bn, s): _record(data, bn, s) for bn in (False, True) for s in (0.1, 1.0)}


def _oracle(net, x, y):
    """Linear outputs, sigmoid inputs and d(sum loss)/dh by torch.func on a copy, with
    BN computed by hand from the batch statistics (biased variance, as Alg. 1)."""
    a = torch.from_numpy(x)
    wus, zs, hs = [], [], []
    mods = list(net)
    k = 0
    while k < len(mods) - 1:
        wu = mods[k](a)
        k += 1
        if isinstance(mods[k], torch.nn.BatchNorm1d):
            bn = mods[k]
            mu, var = wu.mean(0), wu.var(0, unbiased=False)
            z = bn.weight * (wu - mu) / torch.sqrt(var + bn.eps) + bn.bias
            k += 1
        else:
            z = wu
        h = torch.sigmoid(z)
        h.retain_grad()
        wus.append(wu.detach())
        zs.append(z.detach())
        hs.append(h)
        a = h
        k += 1
    loss = F.cross_entropy(mods[-1](a), torch.from_numpy(y), reduction="sum")
    loss.backward()
    return wus, zs, [h.grad for h in hs]


def test_log_checkpoints():
    c = dash.log_checkpoints(400, 15)
    assert c[0] == 0 and c[-1] == 400 and np.all(np.diff(c) > 0)
    assert 10 <= len(c) <= 15 and {1, 2}.issubset(c)
    with pytest.raises(ValueError, match="n must be at least 2"):
        dash.log_checkpoints(10, 1)
    with pytest.raises((ValueError, TypeError), match="steps"):
        dash.log_checkpoints(0, 5)


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("init_std", [0.1, 1.0])
def test_recorded_values_match_torch(data, runs, batchnorm, init_std):
    _, _, xt, yt = data
    start, end, trace = runs[(batchnorm, init_std)]
    for c, net in ((0, start), (-1, end)):
        wus, zs, dhs = _oracle(copy.deepcopy(net), xt[:100], yt[:100])
        for i, (wu, z, dh) in enumerate(zip(wus, zs, dhs)):
            np.testing.assert_allclose(trace.wu_mean[c, i], wu.double().mean(0),
                                       rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(trace.wu_std[c, i],
                                       wu.double().std(0, correction=0),
                                       rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(trace.z_mean[c, i], z.double().mean(0),
                                       rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(trace.z_std[c, i],
                                       z.double().std(0, correction=0),
                                       rtol=1e-4, atol=1e-5)
            count = int((z.abs() > dash.SAT_LIMIT).sum())  # a direct count
            assert abs(trace.saturated[c, i] * z.numel() - count) <= 1
            np.testing.assert_allclose(trace.grad_std[c, i], dh.double().std(),
                                       rtol=1e-3)
            assert trace.z_hist[c, i].sum() == z.numel()
            assert trace.grad_hist[c, i].sum() == dh.numel()
    if not batchnorm:  # without BN the Linear output is z itself
        np.testing.assert_array_equal(trace.wu_mean, trace.z_mean)


def test_saturation_differs_where_it_should(runs):
    assert runs[(False, 1.0)][2].saturated[0].mean() > 0.2
    assert runs[(True, 1.0)][2].saturated[0].max() < 0.01


def test_update_ratio_matches_manual_sgd(data, runs):
    """Replay the run with sgd_steps; the ratio uses the weights before each update."""
    x, y, _, _ = data
    start, end, trace = runs[(True, 1.0)]
    net = copy.deepcopy(start)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)][:-1]
    before = [m.weight.detach().clone() for m in linears]
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for step, _ in training.sgd_steps(net, torch.from_numpy(x), torch.from_numpy(y),
                                          lr=LR, steps=STEPS, seed=0):
            for i, m in enumerate(linears):
                update = m.weight.detach() - before[i]  # = -lr * grad
                want = (update.std() / before[i].std()).item()
                assert trace.update_ratio[step - 1, i] == pytest.approx(want, rel=1e-3)
                before[i] = m.weight.detach().clone()
    finally:
        torch.set_num_threads(old)
    for p, q in zip(net.parameters(), end.parameters()):
        torch.testing.assert_close(p, q)


def test_layer_values_leaves_model_alone(data):
    _, _, xt, yt = data
    net = models.build_mlp(SIZES, batchnorm=True, init_std=1.0, seed=3)
    net.eval()
    buffers = {k: b.clone() for k, b in net.named_buffers()}
    dash.layer_values(net, xt[:50], grad_of=yt[:50])
    assert not net.training
    for k, b in net.named_buffers():
        assert torch.equal(b, buffers[k])
    assert all(p.grad is None for p in net.parameters())


def test_saturated_fraction_and_update_to_data():
    z = torch.tensor([[-5.0, 0.0], [3.9, 4.5]])
    assert dash.saturated_fraction(z) == 0.5
    w, g = torch.randn(30, 20, generator=torch.Generator().manual_seed(0)), \
        torch.randn(30, 20, generator=torch.Generator().manual_seed(1))
    assert dash.update_to_data(w, g, 0.1) == pytest.approx(
        0.1 * np.std(g.numpy(), ddof=1) / np.std(w.numpy(), ddof=1), rel=1e-5)


def test_record_bad_arguments(data):
    x, y, xt, yt = data
    net = models.build_mlp(SIZES, init_std=0.1, seed=0)
    kw = dict(eval_x=xt, eval_y=yt, probe_x=xt[:50], probe_y=yt[:50], lr=LR, steps=4,
              seed=0, progress=False)
    with pytest.raises(ValueError, match="checkpoints"):
        dash.record(net, x, y, checkpoints=np.array([0, 5]), **kw)
    with pytest.raises(ValueError, match="checkpoints"):
        dash.record(net, x, y, checkpoints=np.array([2, 1]), **kw)
    with pytest.raises(TypeError, match="probe_y"):
        dash.record(net, x, y, checkpoints=np.array([0, 4]),
                    **{**kw, "probe_y": yt[:50].astype(float)})


# ---------------------------------------------------------------- figures, widget

def _legible(fig):
    """The course's legibility check at a 900 px notebook column (text >= 9 px, no
    overlapping text, height <= 700 px)."""
    problems = plots.legibility_problems(fig)
    assert not problems, problems


@pytest.fixture(scope="module")
def pair(runs):
    return {"no BN": runs[(False, 1.0)][2], "BN": runs[(True, 1.0)][2]}


def test_figures_read_at_notebook_width(runs, pair):
    figs = [dash.plot_checkpoint_histograms(pair, layers=(1, 3), steps=(0, 2, 6)),
            dash.plot_gradient_histograms(pair, step=0),
            dash.plot_over_time({"1.0": {k: [t] for k, t in pair.items()}}, layer=1)]
    for fig in figs:
        _legible(fig)
        plt.close(fig)
    frames = dash.ExplorerFrames(pair)
    frames.frames(1)
    _legible(frames.fig)
    with pytest.raises(ValueError, match="step"):
        dash.plot_gradient_histograms(pair, step=3)


def test_frames_change_with_step_and_repeat(pair):
    frames = dash.ExplorerFrames(pair)
    first = frames.frames(2)
    assert len(first) == 3 and all(p.startswith(b"\x89PNG") for p in first)
    assert len(set(first)) == 3
    other = frames.frames(3)
    assert other[0] != first[0]
    assert frames.frames(2) == first  # the same state draws the same picture
    with pytest.raises(ValueError, match="layer"):
        frames.frames(4)


def test_dashboard_widget_links_controls_to_stacks(runs, pair):
    pairs = {"0.1": {"no BN": runs[(False, 0.1)][2], "BN": runs[(True, 0.1)][2]},
             "1.0": pair}
    box = widgets.ics_dashboard(pairs)
    (slider, _, layers, _, inits), views, caption = (box.children[0].children,
                                                     *box.children[1:])
    assert slider.value == "0" and slider.index == 0  # starts at the first step
    assert list(slider.options) == ["0", "2", "6"]
    assert list(layers.options) == ["1", "2", "3"] and list(inits.options) == ["0.1",
                                                                                "1.0"]
    assert box.children[0].layout.flex_flow == "row nowrap"
    assert "Look for" in caption.value and "bn-widget" in box._dom_classes
    assert isinstance(views, ipw.Stack) and len(views.children) == 2
    for per_init in views.children:
        assert len(per_init.children) == 3
        for per_layer in per_init.children:
            assert [type(im) for im in per_layer.children] == [ipw.Image] * 3
    links = {(id(lk.source[0]), lk.source[1], id(lk.target[0]))
             for lk in _instances.values() if isinstance(lk, Link)}
    assert (id(inits), "index", id(views)) in links
    for per_init in views.children:
        assert (id(layers), "index", id(per_init)) in links
        for per_layer in per_init.children:
            assert (id(slider), "index", id(per_layer)) in links
    # the picture for (init 1.0, layer 2, step 2) is the frame drawn for it
    assert views.children[1].children[1].children[1].value == \
        dash.ExplorerFrames(pair).frames(2)[1]


def test_dashboard_widget_bad_arguments(pair):
    with pytest.raises(TypeError, match="pairs"):
        widgets.ics_dashboard([pair])
    with pytest.raises(TypeError, match="pairs"):
        widgets.ics_dashboard({"1.0": {"BN": pair["BN"]}})
    with pytest.raises(ValueError, match="units"):
        widgets.ics_dashboard({"1.0": pair}, units=0)
