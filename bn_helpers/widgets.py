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
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter
from PIL import Image

from bn_helpers import parallel, plots

__all__ = ["ics_explorer", "ics_dashboard", "lr_explorer", "framed", "caption"]

# Keyboard focus drawn as a thick orange (Okabe-Ito) outline on every control of a
# framed widget: Lab's default focus ring on a slider handle is hard to see.
FOCUS_CSS = (
    "<style>.bn-widget :is(.noUi-handle, button, input, select, textarea)"
    ":focus-visible { outline: 3px solid #E69F00 !important; outline-offset: 2px; }"
    "</style>")


def caption(look_for: str) -> ipw.HTML:
    """One line under a widget's picture saying what to look for (with FOCUS_CSS)."""
    if not isinstance(look_for, str) or not look_for.strip():
        raise ValueError(f"look_for must be a non-empty str, got {look_for!r}")
    if "\n" in look_for:
        raise ValueError("look_for must be one line (no newline)")
    text = look_for.replace("&", "&amp;").replace("<", "&lt;")
    return ipw.HTML(f"{FOCUS_CSS}<b>Look for:</b> {text}",
                    layout={"margin": "0 0 0 8px"})


def framed(controls: ipw.Widget, out: ipw.Output, look_for: str) -> ipw.VBox:
    """The course's widget layout: VBox(controls, out, caption(look_for)).

    controls: the row of controls (a slider with its readout on, or an HBox of
    them); out: the Output the picture goes into. The box has the CSS class
    "bn-widget", which makes keyboard focus visible on every control inside it.
    """
    box = ipw.VBox([controls, out, caption(look_for)])
    box.add_class("bn-widget")
    return box


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
    layer: hidden layer shown first (1..L); step: checkpoint shown first (default the
    first, so that ArrowRight and dragging right move at once);
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
    step = int(steps[0]) if step is None else step
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) \
            or step not in steps:
        raise ValueError(f"step must be a recorded checkpoint (0, {every}, ..., "
                         f"{steps[-1]}), got {step!r}")

    slider = ipw.IntSlider(value=int(step), min=0, max=int(steps[-1]), step=every,
                           description="step", continuous_update=True)
    layers = ipw.ToggleButtons(options=[(f"{i}", i)
                                        for i in range(1, first.n_layers + 1)],
                               value=layer, description="layer",
                               style={"button_width": "34px"}, layout={"width": "auto"})
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
    return ipw.VBox([ipw.HBox([slider, layers], layout={"flex_flow": "row nowrap",
                                                        "align_items": "center"}), out])


def _moving_average(a: np.ndarray, k: int) -> np.ndarray:
    """Mean of each window of k consecutive entries along the last axis."""
    c = np.cumsum(np.insert(a, 0, 0.0, axis=-1), axis=-1)
    return (c[..., k:] - c[..., :-k]) / k


def lr_explorer(sweep, *, lr: float | None = None, smooth: int = 20) -> ipw.VBox:
    """Pick a learning rate; see both nets' loss and accuracy curves at that rate.

    sweep: an lr_study.LRSweep with nets "no BN" and "BN". lr: the rate shown first,
    one of sweep.lrs (default: the largest). smooth: the training loss is averaged
    over windows of `smooth` steps. Returns framed(SelectionSlider, Output, caption):
    moving the slider (its readout shows the rate) redraws the Output's image (loss,
    accuracy, and final accuracy against the learning rate with the chosen one
    marked).
    """
    from bn_helpers.lr_study import NETS, LRSweep, lr_label

    if not isinstance(sweep, LRSweep):
        raise TypeError(f"sweep must be an lr_study.LRSweep (from lr_sweep), "
                        f"got {type(sweep).__name__}")
    if set(sweep.loss) != set(NETS):
        raise ValueError(f"sweep must hold the nets {list(NETS)}, "
                         f"got {list(sweep.loss)}")
    n_steps = sweep.loss["BN"].shape[1]
    if isinstance(smooth, bool) or not isinstance(smooth, int) \
            or not 1 <= smooth <= n_steps:
        raise ValueError(f"smooth must be an int in 1..{n_steps}, got {smooth!r}")
    lr = float(sweep.lrs[-1]) if lr is None else lr
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating)):
        raise TypeError(f"lr must be a number, got {type(lr).__name__}")
    if not np.isclose(sweep.lrs, lr, rtol=1e-9, atol=0).any():
        raise ValueError(f"lr must be one of the swept learning rates "
                         f"{[lr_label(r) for r in sweep.lrs]}, got {lr!r}")
    k0 = int(np.argmin(np.abs(sweep.lrs - lr)))

    labels = [lr_label(r) for r in sweep.lrs]
    slider = ipw.SelectionSlider(options=labels, value=labels[k0], readout=True,
                                 description="learning rate", continuous_update=True,
                                 style={"description_width": "initial"},
                                 layout={"width": "420px"})
    out = ipw.Output()
    colors = {"no BN": plots.NO_BN_COLOR, "BN": plots.BN_COLOR}
    loss = {net: _moving_average(sweep.loss[net], smooth) for net in NETS}
    x_loss = np.arange(smooth, n_steps + 1)
    finite = np.concatenate([a[np.isfinite(a)] for a in loss.values()])

    # One figure for the widget's lifetime; a redraw swaps data and re-encodes the PNG.
    # 900 px: shown at its own size in a notebook column, text never scaled down
    fig = Figure(figsize=(9.0, 3.3), layout="none")
    FigureCanvasAgg(fig)
    ax_l, ax_a, ax_f = fig.subplots(1, 3)
    fig.subplots_adjust(left=0.075, right=0.99, bottom=0.16, top=0.9, wspace=0.42)
    lines_l = {net: ax_l.plot(x_loss, loss[net][k0], color=colors[net], label=net)[0]
               for net in NETS}
    lines_a = {net: ax_a.plot(sweep.steps, 100 * sweep.test_accuracy[net][k0],
                              color=colors[net], marker=".", label=net)[0]
               for net in NETS}
    # head room above the curves (log scale) for the legend
    ax_l.set(xlim=(0, n_steps), ylim=(0.8 * finite.min(), 4.0 * finite.max()),
             yscale="log", xlabel="training step",
             ylabel=f"loss (nats), mean of {smooth}")
    ax_l.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))  # 0.2, 0.5, 1, 2, 5
    ax_l.yaxis.set_major_formatter("{x:g}")
    ax_l.yaxis.set_minor_formatter(NullFormatter())
    ax_a.set(xlim=(0, n_steps), ylim=(0, 100), xlabel="training step",
             ylabel="test accuracy (%)")
    ax_l.legend(loc="upper right", ncol=2)
    for net in NETS:
        ax_f.plot(sweep.lrs, 100 * sweep.final_accuracy(net), color=colors[net],
                  marker="o", label=net)
    ax_f.axhline(10, color="0.5", linestyle=":", linewidth=1.0)
    ax_f.text(np.sqrt(sweep.lrs[0] * sweep.lrs[-1]), 12, "chance (10%)", color="0.4",
              fontsize=9, ha="center")
    marker = ax_f.axvline(sweep.lrs[k0], color="0.3", linestyle="--", linewidth=1.0)
    ax_f.set(xscale="log", ylim=(0, 100), xlabel="learning rate (log scale)",
             ylabel=f"accuracy after {n_steps} steps (%)",
             title="All learning rates")

    def redraw(change=None) -> None:
        k = labels.index(slider.value)
        for net in NETS:
            lines_l[net].set_ydata(loss[net][k])
            lines_a[net].set_ydata(100 * sweep.test_accuracy[net][k])
        marker.set_xdata([sweep.lrs[k], sweep.lrs[k]])
        ax_l.set_title(f"Training loss, lr = {labels[k]}")
        ax_a.set_title(f"Test accuracy, lr = {labels[k]}")
        out.outputs = (_png_output(fig),)

    redraw()
    slider.observe(redraw, names="value")
    return framed(slider, out, "the rates at which the no-BN net stays near chance "
                  "(10%) while the BN net still learns; arrow keys step through them.")


def ics_dashboard(pairs, *, units: int = 20) -> ipw.VBox:
    """Scrub a deep net's training: every layer, every checkpoint, two init scales.

    pairs: {init label: {"no BN": ics_dashboard.Trace, "BN": Trace}}, all recorded at
        the same checkpoints. units: how many units' trajectories to draw.
    Every picture is drawn here, once (ics_dashboard.ExplorerFrames); the controls
    switch between them in the browser (Stack + jslink), with no kernel round trip.
    Returns VBox(HBox(step slider, "layer", layer buttons, "init std", init buttons),
    Stack, caption), laid out like `framed`: the Stack holds one Stack per init,
    holding one Stack of Images per layer.
    """
    from bn_helpers import ics_dashboard as dash

    if not isinstance(pairs, dict) or not pairs or not all(
            isinstance(p, dict) and set(p) == {"no BN", "BN"} for p in pairs.values()):
        raise TypeError("pairs must be a non-empty dict {init label: {'no BN': Trace, "
                        f"'BN': Trace}}, got {type(pairs).__name__}")
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ValueError(f"units must be a positive int, got {units!r}")
    first = next(iter(pairs.values()))["BN"]
    for label, pair in pairs.items():
        for t in pair.values():
            if not isinstance(t, dash.Trace):
                raise TypeError(f"pairs[{label!r}] must hold ics_dashboard.Trace, "
                                f"got {type(t).__name__}")
            if not np.array_equal(t.steps, first.steps) or t.n_layers != first.n_layers:
                raise ValueError(f"pairs[{label!r}] must share checkpoints and layer "
                                 "count with the first pair")
    n_layers = first.n_layers
    slider = ipw.SelectionSlider(options=[str(s) for s in first.steps], value="0",
                                 description="step", continuous_update=True,
                                 layout={"width": "360px"})
    # labels as separate widgets: a ToggleButtons description wraps above the buttons
    layers = ipw.ToggleButtons(options=[str(k) for k in range(1, n_layers + 1)],
                               tooltips=[f"hidden layer {k}"
                                         for k in range(1, n_layers + 1)],
                               style={"button_width": "30px"}, layout={"width": "auto"})
    inits = ipw.ToggleButtons(options=[str(k) for k in pairs],
                              style={"button_width": "42px"}, layout={"width": "auto"})
    def draw(pair):  # every frame of one init scale: {layer: [PNG bytes per step]}
        frames = dash.ExplorerFrames(pair, units=units)
        return {layer: frames.frames(layer) for layer in range(1, n_layers + 1)}

    # one init scale per CPU core (the pictures are the same as drawn one by one)
    drawn = parallel.run_all(draw, list(pairs.values()), progress=False)
    outer = []
    for pngs in drawn:
        per_layer = []
        for layer in range(1, n_layers + 1):
            images = [ipw.Image(value=png, format="png", layout={"width": "100%"})
                      for png in pngs[layer]]
            per_layer.append(ipw.Stack(images, selected_index=0))
            ipw.jslink((slider, "index"), (per_layer[-1], "selected_index"))
        outer.append(ipw.Stack(per_layer, selected_index=0))
        ipw.jslink((layers, "index"), (outer[-1], "selected_index"))
    views = ipw.Stack(outer, selected_index=0)
    ipw.jslink((inits, "index"), (views, "selected_index"))
    controls = ipw.HBox([slider, ipw.Label("layer"), layers, ipw.Label("init std"),
                         inits],
                        layout={"flex_flow": "row nowrap", "align_items": "center"})
    box = ipw.VBox([controls, views, caption(
        "with BN, z keeps mean 0 and std near 1 while the pre-BN Wu (grey) drifts; "
        "without BN, small init starves early layers of gradient, large init "
        "saturates the sigmoids.")])
    box.add_class("bn-widget")  # visible keyboard focus (FOCUS_CSS)
    return box
