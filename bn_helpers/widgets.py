"""Interactive views of recorded training runs (ipywidgets), one call from a notebook.

The widget draws with matplotlib's Agg backend into one reused Figure and puts the PNG
into an ``ipywidgets.Output`` as an ``image/png`` display (what ``%matplotlib inline``
produces), so it works in JupyterLab, Voila and on Binder, and a test can move the
slider and read the new image without a browser.
"""

from __future__ import annotations

import base64
import io

import ipywidgets as ipw
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from bn_helpers import plots

__all__ = ["ics_explorer"]


def _png_output(fig: Figure) -> dict:
    """Render `fig` with Agg and wrap the PNG as an Output display (skips savefig's
    second, layout-only draw pass)."""
    fig.canvas.draw()
    buf = io.BytesIO()
    Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).save(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": data, "text/plain": "<Figure: ics_explorer>"}}


def ics_explorer(histories, *, layer: int = 1, step: int | None = None,
                 unit: int = 0) -> ipw.VBox:
    """Scrub through training: sigmoid-input histograms of one layer at one step.

    histories: {label: training.History} recorded at the same checkpoints, e.g.
        {"no BN": h_plain, "BN": h_bn}; drawn on shared axes in their course colours.
    layer: hidden layer shown first (1..L); step: checkpoint shown first (default last);
    unit: the unit whose percentile band (Fig. 1b, c) is drawn on the right.
    Returns VBox(children=(HBox(step slider, layer buttons), Output)); moving either
    control redraws the Output's image.
    """
    histories = plots.check_histories(histories)
    first = next(iter(histories.values()))
    layer = plots.check_layer(layer, first.n_layers)
    unit = plots.check_unit(unit, first)
    steps = first.steps
    if len(steps) < 2:
        raise ValueError("histories must have at least 2 checkpoints to scrub through")
    every = int(steps[1] - steps[0])
    step = int(steps[-1]) if step is None else step
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) \
            or step not in steps:
        raise ValueError(f"step must be a recorded checkpoint (0, {every}, ..., "
                         f"{steps[-1]}), got {step!r}")

    slider = ipw.IntSlider(value=int(step), min=0, max=int(steps[-1]), step=every,
                           description="step", continuous_update=True)
    layers = ipw.ToggleButtons(options=[(f"layer {i}", i)
                                        for i in range(1, first.n_layers + 1)],
                               value=layer, description="layer")
    out = ipw.Output()

    # One figure for the widget's lifetime; a redraw swaps data and re-encodes the PNG.
    edges = first.hist_edges
    dens = {label: plots.hist_density(h) for label, h in histories.items()}
    # Fixed margins instead of constrained layout: no layout pass on a redraw.
    fig = Figure(figsize=(9.0, 3.3), layout="none")
    FigureCanvasAgg(fig)
    ax_h, ax_p = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.08, right=0.985, bottom=0.15, top=0.9, wspace=0.3)
    stairs = {label: ax_h.stairs(dens[label][0, 0], edges, color=plots.history_color(h),
                                 label=label, linewidth=1.8)
              for label, h in histories.items()}
    ax_h.set(xlim=(edges[0], edges[-1]), xlabel="sigmoid input z",
             ylabel="probability density")
    # few round ticks (-10, -5, ...): labels never touch
    ax_h.xaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 5, 10]))
    ax_h.yaxis.set_major_formatter("{x:.2f}")  # same label width for every layer
    ax_h.legend(loc="upper right")
    ax_p.set(xlabel="training step", ylabel="z (15th, 50th, 85th pct)")
    marker = ax_p.axvline(step, color="0.3", linestyle="--", linewidth=1.0)
    bands: list = []

    def draw_layer(layer_no: int) -> None:
        for artist in bands:
            artist.remove()
        bands.clear()
        for label, h in histories.items():
            bands.extend(plots.draw_percentile_band(ax_p, h, layer_no, unit,
                                                    color=plots.history_color(h),
                                                    label=label))
        ax_h.set_ylim(0, 1.05 * max(d[:, layer_no - 1].max() for d in dens.values()))
        ax_p.relim()
        ax_p.autoscale_view()
        ax_p.set_title(f"layer {layer_no}, unit {unit}: percentiles over training")

    def redraw(change=None) -> None:
        layer_no = layers.value
        if change is None or change["owner"] is layers:
            draw_layer(layer_no)
        c = min(round(slider.value / every), len(steps) - 1)
        for label, patch in stairs.items():
            patch.set_data(dens[label][c, layer_no - 1])
        marker.set_xdata([steps[c], steps[c]])
        ax_h.set_title(f"layer {layer_no}: all units at step {steps[c]}")
        out.outputs = (_png_output(fig),)

    redraw()
    slider.observe(redraw, names="value")
    layers.observe(redraw, names="value")
    return ipw.VBox([ipw.HBox([slider, layers]), out])
