"""Every figure bn_helpers draws reads at notebook width (JupyterLab, ~900 px column).

A figure fails when any text would be under 9 px once shown in the column (font size in
pt x dpi / 72 x shrink to 900 px), when two texts overlap, or when it is taller than
700 px at that width (plots.legibility_problems). Widget figures are checked as the
widget shows them (the whole canvas, not cropped), in each state a learner can reach
with one control. The checker itself is tested on figures made to fail.

Figures drawn inside notebooks are checked by the kernel extension
``bn_helpers.plots`` (``--ext=bn_helpers.plots``), tested at the end of this file.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bn_helpers import (  # noqa: E402
    compgraph, figure1, lab, lab_widget, plots, training, widgets)
from bn_helpers.lr_study import LR_GRID, LRSweep  # noqa: E402


def _history(batchnorm: bool, seed: int, *, layers=3, units=100, every=100,
             steps=4000) -> training.History:
    """A History shaped like 01's runs: 41 checkpoints, 3 layers of 100 units."""
    rng = np.random.default_rng(seed)
    c = steps // every + 1
    pct = np.sort(rng.normal(0, 3, size=(c, 3, units)), axis=1)
    return training.History(
        steps=np.arange(c) * every, loss=rng.uniform(0.05, 2.5, steps),
        test_accuracy=np.linspace(0.1, 0.97, c), percentiles=(pct,) * layers,
        mean=(rng.normal(size=(c, units)),) * layers,
        std=(rng.uniform(1, 2, (c, units)),) * layers,
        hist_counts=rng.integers(0, 500, (c, layers, 60)),
        hist_edges=np.linspace(-15, 15, 61), config={"batchnorm": batchnorm})


def _sweep(seed: int = 0, steps: int = 400) -> LRSweep:
    rng = np.random.default_rng(seed)
    k, c = len(LR_GRID), 9
    loss = {net: rng.uniform(0.1, 2.4, (k, steps)) for net in ("no BN", "BN")}
    loss["no BN"][-2:] = np.nan  # diverged runs, as at the largest rates
    acc = {net: np.sort(rng.uniform(0.1, 0.97, (k, c)), axis=1)
           for net in ("no BN", "BN")}
    return LRSweep(lrs=np.array(LR_GRID), steps=np.linspace(0, steps, c).astype(int),
                   loss=loss, test_accuracy=acc, config={"seed": seed})


RUNS = {"no BN": _history(False, 0), "BN": _history(True, 1)}

FIGURES = {
    "plots.plot_training_curves": lambda: plots.plot_training_curves(RUNS),
    "plots.plot_histogram_heatmaps": lambda: plots.plot_histogram_heatmaps(RUNS),
    "plots.plot_percentile_bands": lambda: plots.plot_percentile_bands(RUNS),
    "plots.plot_drift": lambda: plots.plot_drift(RUNS),
    "compgraph.draw_bn_graph forward": lambda: compgraph.draw_bn_graph(),
    "compgraph.draw_bn_graph backward": lambda: compgraph.draw_bn_graph(backward=True),
    "figure1.plot_figure1": lambda: figure1.plot_figure1(figure1.load_figure1()),
    "lab_widget.plot_ablation": lambda: lab_widget.plot_ablation(lab.load_ablation()),
    "lab_widget.draw_lab": lambda: _lab_figure(k=4),
    "lab_widget.draw_lab diverged": lambda: _lab_figure(k=9),
}
# checked with plots.legibility_problems in tests/test_ics_dashboard.py, which records
# the runs these figures need
CHECKED_ELSEWHERE = {"ics_dashboard.plot_checkpoint_histograms",
                     "ics_dashboard.plot_gradient_histograms",
                     "ics_dashboard.plot_over_time"}


def _lab_figure(k: int) -> Figure:
    """The lab's picture at learning rate LR_GRID[k] from the shipped runs, drawn into a
    figure of the widget's size (the data arrays are only needed for live training)."""
    ablation = lab.load_ablation()
    runs = lab_widget.LRLab(None, None, None, None, ablation)
    setting = lab.Setting(**{**ablation["bn"].meta["setting"], "steps": 400})
    fig = plt.figure(figsize=(11.0, 3.9), layout="none")
    lab_widget.draw_lab(fig, runs.lrs, runs.view(setting, 3), k, setting)
    return fig



@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", list(FIGURES))
def test_module_figure_reads_at_notebook_width(name):
    plots.use_style()
    problems = plots.legibility_problems(FIGURES[name]())
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


def _widget_figures(monkeypatch, build, drive):
    """Every figure state the widget renders while `drive(box)` moves its controls."""
    seen = []
    render = widgets._png_output

    def recording(fig):
        seen.append(plots.legibility_problems(fig, tight=False))
        return render(fig)

    monkeypatch.setattr(widgets, "_png_output", recording)
    drive(build())
    return seen


def _drive_ics(box):
    (slider, layers), _ = box.children[0].children, box.children[1]
    for layer in [v for _, v in layers.options]:
        layers.value = layer
        slider.value = slider.min
        slider.value = slider.max


def _find(box, kind):
    """The first descendant widget of type `kind`."""
    stack = [box]
    while stack:
        w = stack.pop()
        if isinstance(w, kind):
            return w
        stack.extend(getattr(w, "children", ()))
    raise AssertionError(f"no {kind.__name__} in the widget")


def _drive_lr(box):
    import ipywidgets as ipw

    slider = _find(box, ipw.SelectionSlider)
    for option in slider.options:
        slider.value = option


@pytest.mark.parametrize("name, build, drive", [
    ("widgets.ics_explorer", lambda: widgets.ics_explorer(RUNS), _drive_ics),
    ("widgets.lr_explorer", lambda: widgets.lr_explorer(_sweep()), _drive_lr),
])
def test_widget_figure_reads_at_notebook_width(monkeypatch, name, build, drive):
    plots.use_style()
    seen = _widget_figures(monkeypatch, build, drive)
    assert len(seen) > 2, f"{name}: the controls redrew only {len(seen)} time(s)"
    problems = sorted({p for state in seen for p in state})
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


def test_every_figure_function_is_covered():
    """A plot_*/draw_* function anywhere in bn_helpers must be added to FIGURES."""
    import importlib
    import pkgutil

    import bn_helpers

    covered = {name.split()[0] for name in FIGURES} | CHECKED_ELSEWHERE
    missing = []
    for info in pkgutil.iter_modules(bn_helpers.__path__):
        module = importlib.import_module(f"bn_helpers.{info.name}")
        for attr in getattr(module, "__all__", ()):
            if attr.startswith(("plot_", "draw_")) and attr != "draw_percentile_band" \
                    and f"{info.name}.{attr}" not in covered:
                missing.append(f"bn_helpers.{info.name}.{attr}")
    assert not missing, f"figures not checked here (add them to FIGURES): {missing}"


# --------------------------------------------------------- the checker can fail

@pytest.fixture
def default_style():
    with plt.style.context("default"):
        yield


@pytest.mark.usefixtures("default_style")
def test_checker_flags_small_text_tall_figures_and_overlaps():
    fig, ax = plt.subplots(figsize=(18, 4), dpi=100)  # 1800 px: shrunk by half
    ax.set_title("10 pt text at half size")
    problems = plots.legibility_problems(fig, tight=False)  # the whole 1800 px
    (small,) = [p for p in problems if "under 9 px" in p]
    assert "smallest 6.9 px" in small  # 10 pt x 100/72 x 0.5 (ticks at 10 pt)
    fig, ax = plt.subplots(figsize=(6, 9), dpi=100)
    assert any("tall" in p for p in plots.legibility_problems(fig))
    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    ax.text(0.5, 0.5, "first label", transform=ax.transAxes)
    ax.text(0.52, 0.5, "second label", transform=ax.transAxes)
    assert any("'first label' overlaps 'second label'" in p
               for p in plots.legibility_problems(fig))


@pytest.mark.usefixtures("default_style")
def test_checker_passes_a_plain_figure_and_sees_cut_off_text():
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100, layout="constrained")
    ax.plot([0, 1], [0, 1])
    ax.set(title="fine", xlabel="x", ylabel="y")
    assert plots.legibility_problems(fig) == []
    ax.text(1.3, 0.5, "beyond the right edge", transform=ax.transAxes)
    assert any("cut off" in p for p in plots.legibility_problems(fig, tight=False))


@pytest.mark.usefixtures("default_style")
def test_narrow_figures_are_not_enlarged():
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)  # 400 px: shown at 400 px
    ax.set_title("6 pt or 7 pt")
    ax.title.set_fontsize(7)
    assert plots.legibility_problems(fig) == []
    ax.title.set_fontsize(6)  # 8.3 px: too small even though the figure is narrow
    (small,) = plots.legibility_problems(fig)
    assert "1 text(s) under 9 px, smallest 8.3 px ('6 pt or 7 pt')" in small


@pytest.mark.notebook
@pytest.mark.parametrize("how", ["kernel argument", "IPYTHONDIR"])
def test_figure_guard_reports_from_a_kernel(how, tmp_path, monkeypatch):
    """--ext=bn_helpers.plots (or a profile in IPYTHONDIR) checks the figures the
    inline backend shows."""
    import nbclient
    import nbformat

    args = ["--ext=bn_helpers.plots"]
    if how == "IPYTHONDIR":
        monkeypatch.setenv("IPYTHONDIR", plots.figure_guard_profile(tmp_path / "ip"))
        args = []

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(20, 3))\nax.set_title('too wide')",
        "fig, ax = plt.subplots(figsize=(6, 3))\nax.set_title('fine');",
    )]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                            extra_arguments=args).execute()
    found = plots.figure_guard_failures(nb)
    assert len(found) == 1 and "'too wide'" in found[0] and "under 9 px" in found[0]
    assert found[0].startswith(f"cell {nb.cells[0].id}: {plots.GUARD_TAG}")
    shown = [o for c in nb.cells for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(shown) == 2  # the guard reports; it never hides a figure


@pytest.mark.notebook
def test_the_notebook_test_fails_on_an_illegible_figure(tmp_path):
    """tests/test_notebooks.py grades with figure_guard=True: a notebook whose figure is
    illegible is reported as broken, outside its exercises."""
    import nbformat

    from instructor import grading

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(20, 3))\nax.set_title('too wide')")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert grading.grade(path, timeout=120) == ([], [])
    results, other = grading.grade(path, timeout=120, figure_guard=True)
    assert results == [] and len(other) == 1
    assert other[0].startswith("figure: cell ") and "'too wide'" in other[0]
