"""The ICS figures in bn_helpers.plots: panels, labels, colours, and argument checks."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from bn_helpers import plots, training  # noqa: E402


def _history(batchnorm: bool, seed: int) -> training.History:
    """A small synthetic History (3 layers of 4 units, 5 checkpoints)."""
    rng = np.random.default_rng(seed)
    c, units = 5, 4
    pct = np.sort(rng.normal(size=(c, 3, units)), axis=1)
    return training.History(
        steps=np.arange(c) * 10, loss=rng.uniform(0.1, 2.0, 40),
        test_accuracy=rng.uniform(0, 1, c), percentiles=(pct,) * 3,
        mean=(rng.normal(size=(c, units)),) * 3,
        std=(rng.uniform(1, 2, (c, units)),) * 3,
        hist_counts=rng.integers(0, 50, (c, 3, 8)), hist_edges=np.linspace(-4, 4, 9),
        config={"batchnorm": batchnorm})


@pytest.fixture
def runs():
    yield {"no BN": _history(False, 0), "BN": _history(True, 1)}
    plt.close("all")


def test_history_color(runs):
    assert plots.history_color(runs["no BN"]) == plots.NO_BN_COLOR
    assert plots.history_color(runs["BN"]) == plots.BN_COLOR


def test_hist_density_integrates_to_one(runs):
    d = plots.hist_density(runs["BN"])
    np.testing.assert_allclose((d * np.diff(runs["BN"].hist_edges)).sum(axis=-1), 1.0)


def test_heatmaps_layout(runs):
    fig = plots.plot_histogram_heatmaps(runs)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 6  # 3 layers x 2 runs
    titles = [ax.get_title() for ax in panels]
    assert "no BN: layer 1" in titles and "BN: layer 3" in titles
    assert all(ax.get_ylim() == panels[0].get_ylim() for ax in panels)  # shared axes


def test_percentile_bands_follow_data_and_colours(runs):
    fig = plots.plot_percentile_bands(runs, unit=2)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [to_hex(ln.get_color()) for ln in lines] == [plots.NO_BN_COLOR.lower(),
                                                          plots.BN_COLOR.lower()]
    median_bn = runs["BN"].percentiles[0][:, 1, 2]
    np.testing.assert_array_equal(lines[1].get_ydata(), median_bn)
    assert ax.get_xlabel() == "training step" and "percentile" in ax.get_ylabel()


def test_training_curves_and_drift(runs):
    fig = plots.plot_training_curves(runs, smooth=5)
    acc = fig.axes[1].get_lines()[1].get_ydata()
    np.testing.assert_allclose(acc, 100 * runs["BN"].test_accuracy)
    fig = plots.plot_drift(runs)
    assert len(fig.axes) == 3
    want, _ = training.drift_per_interval(runs["no BN"])
    np.testing.assert_allclose(fig.axes[2].get_lines()[0].get_ydata(), want[2])


def test_bad_arguments(runs):
    with pytest.raises(TypeError, match="histories"):
        plots.plot_percentile_bands([runs["BN"]])
    with pytest.raises(ValueError, match="unit"):
        plots.plot_percentile_bands(runs, unit=4)
    with pytest.raises(ValueError, match="smooth"):
        plots.plot_training_curves(runs, smooth=0)
    with pytest.raises(ValueError, match="layer"):
        plots.check_layer(0, 3)
    h = runs["BN"]
    one = training.History(
        steps=h.steps[:1], loss=h.loss[:0], test_accuracy=h.test_accuracy[:1],
        percentiles=tuple(p[:1] for p in h.percentiles),
        mean=tuple(m[:1] for m in h.mean), std=tuple(s[:1] for s in h.std),
        hist_counts=h.hist_counts[:1], hist_edges=h.hist_edges, config=h.config)
    figures = plt.get_fignums()
    with pytest.raises(ValueError, match="2 checkpoints"):
        plots.plot_drift({"BN": one})
    assert plt.get_fignums() == figures  # no half-drawn figure left behind
