"""widgets.ics_explorer builds and redraws without a browser (no kernel needed)."""

import base64

import numpy as np
import pytest

from bn_helpers import models, training, widgets
from bn_helpers.data import load_mnist


@pytest.fixture(scope="module")
def histories():
    x, y = load_mnist("train", n=300, seed=0)
    xt, yt = load_mnist("test", n=100, seed=1)
    runs = {}
    for label, batchnorm in (("no BN", False), ("BN", True)):
        net = models.build_mlp(batchnorm=batchnorm, init_std=0.1, seed=0)
        runs[label] = training.train(net, x, y, eval_x=xt, eval_y=yt, probe_x=xt,
                                     lr=0.5, steps=40, seed=0, record_every=10,
                                     progress=False)
    return runs


def _parts(box):
    (slider, layers), out = box.children[0].children, box.children[1]
    return slider, layers, out


def _png(out) -> bytes:
    assert len(out.outputs) == 1
    data = out.outputs[0]["data"]["image/png"]
    png = base64.b64decode(data)
    assert png.startswith(b"\x89PNG")
    return png


def test_builds_and_redraws_on_slider_and_layer(histories):
    box = widgets.ics_explorer(histories, layer=2, step=10)
    slider, layers, out = _parts(box)
    assert (slider.min, slider.max, slider.step, slider.value) == (0, 40, 10, 10)
    assert [v for _, v in layers.options] == [1, 2, 3] and layers.value == 2
    first = _png(out)
    slider.value = 30
    after_step = _png(out)
    assert after_step != first
    layers.value = 3
    after_layer = _png(out)
    assert after_layer != after_step
    slider.value = 10
    layers.value = 2
    assert _png(out) == first  # the same state draws the same picture


def test_default_step_is_first_checkpoint(histories):
    slider, _, _ = _parts(widgets.ics_explorer(histories))
    assert slider.value == 0  # so that ArrowRight / dragging right move at once


def test_bad_arguments(histories):
    with pytest.raises(ValueError, match="layer"):
        widgets.ics_explorer(histories, layer=4)
    with pytest.raises(TypeError, match="layer"):
        widgets.ics_explorer(histories, layer="1")
    with pytest.raises(ValueError, match="step"):
        widgets.ics_explorer(histories, step=15)
    with pytest.raises(ValueError, match="unit"):
        widgets.ics_explorer(histories, unit=100)
    with pytest.raises(TypeError, match="histories"):
        widgets.ics_explorer(list(histories.values()))
    with pytest.raises(TypeError, match="histories"):
        widgets.ics_explorer({"no BN": np.zeros(3)})
    h = histories["BN"]
    shorter = training.History(
        steps=h.steps[:3], loss=h.loss[:20], test_accuracy=h.test_accuracy[:3],
        percentiles=tuple(p[:3] for p in h.percentiles),
        mean=tuple(m[:3] for m in h.mean), std=tuple(s[:3] for s in h.std),
        hist_counts=h.hist_counts[:3],
        hist_edges=h.hist_edges, config=h.config)
    with pytest.raises(ValueError, match="share checkpoints"):
        widgets.ics_explorer({"no BN": histories["no BN"], "BN": shorter})


# ------------------------------------------------------------------ lr_explorer

@pytest.fixture(scope="module")
def sweep():
    from bn_helpers import lr_study

    x, y = load_mnist("train", n=300, seed=0)
    xt, yt = load_mnist("test", n=100, seed=1)
    return lr_study.lr_sweep(x, y, eval_x=xt, eval_y=yt, lrs=(0.1, 1.0, 10.0),
                             steps=30, record_every=10, seed=0, progress=False)


def test_lr_explorer_redraws_on_slider(sweep):
    box = widgets.lr_explorer(sweep, lr=1.0)
    slider, out, caption = box.children
    assert "Look for:" in caption.value and "bn-widget" in box._dom_classes
    assert list(slider.options) == ["0.1", "1", "10"] and slider.value == "1"
    first = _png(out)
    slider.value = "10"
    after = _png(out)
    assert after != first
    slider.value = "1"
    assert _png(out) == first  # the same state draws the same picture
    slider.value = "0.1"
    assert _png(out) not in (first, after)


def test_lr_explorer_default_is_largest_lr(sweep):
    slider, *_ = widgets.lr_explorer(sweep).children
    assert slider.value == "10"


def test_lr_explorer_bad_arguments(sweep):
    with pytest.raises(ValueError, match="lr must be one of"):
        widgets.lr_explorer(sweep, lr=0.5)
    with pytest.raises(TypeError, match="lr must be a number"):
        widgets.lr_explorer(sweep, lr="1")
    with pytest.raises(ValueError, match="smooth"):
        widgets.lr_explorer(sweep, smooth=31)
    with pytest.raises(TypeError, match="sweep"):
        widgets.lr_explorer({"BN": sweep.loss["BN"]})
    from bn_helpers.lr_study import LRSweep

    only_bn = LRSweep(lrs=sweep.lrs, steps=sweep.steps, loss={"BN": sweep.loss["BN"]},
                      test_accuracy={"BN": sweep.test_accuracy["BN"]})
    with pytest.raises(ValueError, match="nets"):
        widgets.lr_explorer(only_bn)


def test_framed_widget_has_caption_and_visible_focus():
    import ipywidgets as ipw

    slider, out = ipw.IntSlider(), ipw.Output()
    box = widgets.framed(slider, out, "the peak moves right")
    assert box.children[:2] == (slider, out) and "bn-widget" in box._dom_classes
    html = box.children[2].value
    assert "Look for:</b> the peak moves right" in html
    assert ":focus-visible" in html and "outline: 3px" in html
    with pytest.raises(ValueError, match="look_for"):
        widgets.framed(slider, out, "")
    with pytest.raises(ValueError, match="one line"):
        widgets.caption("two\nlines")
