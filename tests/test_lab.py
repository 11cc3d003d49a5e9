"""bn_helpers.lab: the batched trainer against torch's own modules, run by run."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bn_helpers import lab, models
from bn_helpers.data import DataIntegrityError, load_mnist


@pytest.fixture(scope="module")
def data():
    x, y = load_mnist("train", n=600, seed=0)
    xt, yt = load_mnist("test", n=200, seed=1)
    return x, y, xt, yt


def torch_run(data, *, batchnorm, lr, seed, steps, placement="before"):
    """The oracle: models.build_mlp (nn.Linear, nn.BatchNorm1d) and a plain SGD loop
    over the same batches; returns (losses, eval accuracy)."""
    x, y, xt, yt = (torch.as_tensor(a) for a in data)
    net = models.build_mlp(batchnorm=batchnorm, init_std=0.1, seed=seed)
    if placement == "after":  # Linear(bias) -> Sigmoid -> BN, same weights
        mods = list(net)
        layers = []
        for i in range(0, len(mods) - 1, 3):
            lin, norm, act = mods[i: i + 3]
            new = torch.nn.Linear(lin.in_features, lin.out_features)
            with torch.no_grad():
                new.weight.copy_(lin.weight)
                new.bias.zero_()
            layers += [new, act, norm]
        net = torch.nn.Sequential(*layers, mods[-1])
    order = lab._batch_order(seed, len(x), steps, 60)
    losses = []
    for t in range(steps):
        idx = torch.from_numpy(order[t])
        loss = F.cross_entropy(net(x[idx]), y[idx])
        net.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= lr * p.grad
        losses.append(loss.item())
    net.eval()
    with torch.no_grad():
        acc = (net(xt).argmax(1) == yt).float().mean().item()
    return np.array(losses), acc


@pytest.mark.parametrize("norm,placement", [("none", "before"), ("bn", "before"),
                                            ("bn", "after")])
def test_batched_runs_match_torch_modules(data, norm, placement):
    x, y, xt, yt = data
    lrs, seeds = [0.5, 1.5, 0.5], [0, 0, 3]  # chaotic (diverging) runs amplify rounding
    runs = lab.train_runs(x, y, eval_x=xt, eval_y=yt, norm=norm, lrs=lrs, seeds=seeds,
                          setting=lab.Setting(steps=15, placement=placement))
    for r, (lr, seed) in enumerate(zip(lrs, seeds)):
        loss, acc = torch_run(data, batchnorm=norm == "bn", lr=lr, seed=seed,
                              steps=15, placement=placement)
        np.testing.assert_allclose(runs.loss[r], loss, rtol=2e-5, atol=1e-6)
        assert abs(runs.accuracy[r, -1] - acc) <= 1 / len(yt) + 1e-6
    assert not np.allclose(runs.loss[0], runs.loss[1])  # the lrs differ per run


def test_weight_norm_matches_torch_parametrization():
    torch.manual_seed(0)
    x = torch.rand(7, 784)
    params = lab._init_params(lab.Setting(depth=1), "wn", np.array([5]))
    with torch.no_grad():
        params[1].uniform_(0.5, 2.0)  # g
        params[2].normal_()  # b
    lin = torch.nn.Linear(784, 100)
    with torch.no_grad():
        lin.weight.copy_(params[0][0].T)
        lin.bias.copy_(params[2][0])
    lin = torch.nn.utils.parametrizations.weight_norm(lin, dim=0)
    with torch.no_grad():
        lin.parametrizations.weight.original0.copy_(params[1][0][:, None])
        expected = torch.sigmoid(lin(x))
        got = lab._hidden(x[None], params[:3], "wn", torch.sigmoid, "before", True,
                          None, 0)[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("norm,invariant", [("bn", True), ("scale", True),
                                            ("wn", True), ("center", False),
                                            ("none", False)])
def test_scale_invariance_of_each_norm(norm, invariant):
    torch.manual_seed(1)
    x = torch.rand(1, 32, 784)
    setting = lab.Setting(depth=1)
    params = lab._init_params(setting, norm, np.array([0]))
    k = lab._layer_size(norm, "before")
    with torch.no_grad():
        out = lab._hidden(x, params[:k], norm, torch.sigmoid, "before", True,
                          [(torch.zeros(1, 100), torch.ones(1, 100))], 0)
        scaled = [params[0] * 7.0] + list(params[1:k])
        out7 = lab._hidden(x, scaled, norm, torch.sigmoid, "before", True,
                           [(torch.zeros(1, 100), torch.ones(1, 100))], 0)
    gap = (out7 - out).abs().max().item()
    assert (gap < 1e-5) if invariant else (gap > 1e-2), f"{norm}: gap {gap}"


def test_diverged_and_lr_star():
    loss = np.array([[2.3] * 20, [2.3] + [3.0] * 19, [2.3] + [np.nan] * 19,
                     [2.3] + [1.0] * 18 + [2.4]])
    # last tenth (2 steps) of row 3: mean 1.7 < 2.3: not diverged
    assert lab.diverged(loss).tolist() == [False, True, True, False]
    lrs = [0.1, 1.0, 10.0, 100.0]
    got = lab.lr_star(lrs, [[0, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_allclose(got[0], np.sqrt(10.0))
    assert got[1] == np.inf and np.isnan(got[2])
    with pytest.raises(ValueError, match="diverged_grid"):
        lab.lr_star(lrs, [[0, 1]])
    with pytest.raises(ValueError, match="loss"):
        lab.diverged(np.zeros((2, 3)))


def test_bad_arguments(data):
    x, y, xt, yt = data
    kw = dict(eval_x=xt, eval_y=yt, setting=lab.Setting(steps=10))
    with pytest.raises(ValueError, match="norm"):
        lab.train_runs(x, y, norm="layer", lrs=[1.0], seeds=[0], **kw)
    with pytest.raises(ValueError, match="equal length"):
        lab.train_runs(x, y, norm="bn", lrs=[1.0, 2.0], seeds=[0], **kw)
    with pytest.raises(ValueError, match=r"lrs\[0\]"):
        lab.train_runs(x, y, norm="bn", lrs=[-1.0], seeds=[0], **kw)
    with pytest.raises(ValueError, match="init"):
        lab.Setting(init="he")
    with pytest.raises(ValueError, match="batch_size"):
        lab.Setting(batch_size=1)


def test_shipped_ablation_loads_and_checksum_guards(tmp_path):
    runs = lab.load_ablation()
    assert set(runs) == set(lab.NORMS)
    bn = runs["bn"]
    assert bn.loss.shape == (len(lab.LR_GRID) * len(lab.SEEDS), bn.setting.steps)
    bad = tmp_path / "ablation.npz"
    raw = bytearray(lab.DEFAULT_PATH.read_bytes())
    raw[-100] ^= 1
    bad.write_bytes(bytes(raw))
    (tmp_path / "SHA256SUMS").write_text(
        (lab.DEFAULT_PATH.parent / "SHA256SUMS").read_text())
    with pytest.raises(DataIntegrityError, match="corrupt"):
        lab.load_ablation(bad)
    with pytest.raises(FileNotFoundError, match="reproduce_lab"):
        lab.load_ablation(tmp_path / "nothing.npz")


def test_lab_widget_caches_and_trains_live():
    import ipywidgets as ipw

    from bn_helpers import lab_widget

    x, y = load_mnist("train", n=2000, seed=0)
    xt, yt = load_mnist("test", n=200, seed=1)
    runs = lab_widget.LRLab(x, y, xt, yt, lab.load_ablation())
    box = lab_widget.lab_widget(runs, lr=1.36)
    slider, *controls = box.children[:8]
    stack, note = box.children[-2:]
    assert "Look for:" in note.value and "bn-widget" in box._dom_classes
    assert isinstance(stack, ipw.Stack) and stack.selected_index == slider.index == 3
    # every picture of the cached default setting is drawn, all different
    pictures = [p.outputs[0]["data"]["image/png"] for p in stack.children]
    assert len(set(pictures)) == len(lab.LR_GRID)
    n_cached = len(runs.cache)
    budget = controls[1]
    budget.value = 200  # shipped: no training
    assert len(runs.cache) == n_cached
    assert stack.children[3].outputs[0]["data"]["image/png"] != pictures[3]
    init = controls[2]
    init.value = "xavier"  # new: 2 nets x 3 seeds at lr 1.36 train now
    assert len(runs.cache) == n_cached + 6 and runs.last_train_s > 0
    setting = lab.Setting(init="xavier", steps=200)
    assert runs.missing(setting, 1.36, 3) == [] and runs.missing(setting, 0.05, 3)
    with pytest.raises(TypeError, match="LRLab"):
        lab_widget.lab_widget("runs")


def test_blitted_lab_frames_look_like_full_draws():
    """lab_frames draws the shared panels once and blits each learning rate's own
    artists; every frame must look like a full draw_lab of that learning rate."""
    import base64
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    from bn_helpers import lab_widget

    ablation = lab.load_ablation()
    runs = lab_widget.LRLab(None, None, None, None, ablation)
    setting = lab.Setting(**{**ablation["bn"].meta["setting"], "steps": 400})
    view = runs.view(setting, 3)

    def pixels(png_output):
        raw = base64.b64decode(png_output["data"]["image/png"])
        return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=float)

    def fresh():
        fig = Figure(figsize=(11.0, 3.9), layout="none")
        FigureCanvasAgg(fig)
        return fig

    order = [3, 0, 9, 5]
    frames = dict(lab_widget.lab_frames(fresh(), runs.lrs, view, order, setting))
    assert list(frames) == order
    for k in order:
        fig = fresh()
        lab_widget.draw_lab(fig, runs.lrs, view, k, setting)
        fig.canvas.draw()
        full = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float)
        blit = pixels(frames[k])
        assert blit.shape == full.shape
        differ = (np.abs(blit - full).max(axis=2) > 40).mean()
        # drawing order differs only where a marker crosses another line
        assert differ < 0.002, f"lr index {k}: {differ:.2%} of the pixels differ"
    assert len({frames[k]["data"]["image/png"] for k in order}) == len(order)
