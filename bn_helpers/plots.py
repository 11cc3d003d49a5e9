"""Figures for the course. ``use_style()`` applies the bundled style; plotting functions
take data and return the matplotlib Figure, so notebooks stay one call per picture.

Colour convention across the course: no-BN in BLUE, with-BN in VERMILLION (colour-blind
safe Okabe-Ito palette).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["STYLE", "NO_BN_COLOR", "BN_COLOR", "use_style", "history_color",
           "hist_density", "draw_percentile_band", "plot_training_curves",
           "plot_histogram_heatmaps", "plot_percentile_bands", "plot_drift",
           "legibility_problems", "install_figure_guard", "figure_guard_failures",
           "figure_guard_profile", "load_ipython_extension"]

STYLE = Path(__file__).with_name("course.mplstyle")
NO_BN_COLOR = "#0072B2"
BN_COLOR = "#D55E00"


def use_style() -> None:
    """Apply the course figure style (call once in a notebook's setup cell)."""
    plt.style.use(STYLE)


# ------------------------------------------------------------ internal covariate shift
# The functions below take {label: training.History}, e.g. {"no BN": h0, "BN": h1}; a
# run's colour follows its config (BN_COLOR if the net had BatchNorm, else NO_BN_COLOR).


def history_color(history) -> str:
    """BN_COLOR for a History of a net with BatchNorm, else NO_BN_COLOR."""
    return BN_COLOR if history.config.get("batchnorm") else NO_BN_COLOR


def check_histories(histories) -> dict:
    """`histories` if it is {label: History} with shared checkpoints, else raise."""
    from bn_helpers.training import History  # plots must not need torch unless asked

    if not isinstance(histories, dict) or not histories:
        raise TypeError("histories must be a non-empty dict {label: training.History}, "
                        f"got {type(histories).__name__}")
    for label, h in histories.items():
        if not isinstance(h, History):
            raise TypeError(f"histories[{label!r}] must be a training.History, "
                            f"got {type(h).__name__}")
    first = next(iter(histories.values()))
    for label, h in histories.items():
        if h.n_layers != first.n_layers or not np.array_equal(h.steps, first.steps) \
                or not np.array_equal(h.hist_edges, first.hist_edges):
            raise ValueError(f"histories[{label!r}] must share checkpoints, layer "
                             f"count and histogram bins with the first History")
    return histories


def check_layer(layer, n_layers: int) -> int:
    """A hidden-layer number, counted from 1 as in the figures."""
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise TypeError(f"layer must be an int in 1..{n_layers}, "
                        f"got {type(layer).__name__}")
    if not 1 <= layer <= n_layers:
        raise ValueError(f"layer must be in 1..{n_layers} (hidden layers count from 1),"
                         f" got {layer}")
    return int(layer)


def check_unit(unit, history) -> int:
    """A unit index (from 0) that exists in every hidden layer of `history`."""
    width = min(m.shape[1] for m in history.mean)
    if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)):
        raise TypeError(f"unit must be an int, got {type(unit).__name__}")
    if not 0 <= unit < width:
        raise ValueError(f"unit must be in 0..{width - 1}, got {unit}")
    return int(unit)


def hist_density(history) -> np.ndarray:
    """Histogram counts as a density: (C, L, B), each histogram integrating to 1."""
    counts = history.hist_counts.astype(np.float64)
    width = np.diff(history.hist_edges)
    return counts / (counts.sum(axis=-1, keepdims=True) * width)


def draw_percentile_band(ax, history, layer: int, unit: int, *, color: str, label: str):
    """Shade the 15-85th percentile band of one unit's input and draw its median."""
    p = history.percentiles[layer - 1][:, :, unit]
    band = ax.fill_between(history.steps, p[:, 0], p[:, 2], color=color, alpha=0.25,
                           linewidth=0)
    (line,) = ax.plot(history.steps, p[:, 1], color=color, label=label)
    return band, line


def plot_training_curves(histories, *, smooth: int = 50):
    """Training loss (moving average over `smooth` steps) and test accuracy vs step."""
    histories = check_histories(histories)
    if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1:
        raise ValueError(f"smooth must be an int >= 1, got {smooth!r}")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    for label, h in histories.items():
        k = min(smooth, len(h.loss))
        loss = np.convolve(h.loss, np.ones(k) / k, mode="valid")
        ax_loss.plot(np.arange(k, len(h.loss) + 1), loss, color=history_color(h),
                     label=label)
        ax_acc.plot(h.steps, 100 * h.test_accuracy, color=history_color(h), label=label)
    ax_loss.set(title=f"Training loss (mean of {smooth} steps)", xlabel="training step",
                ylabel="cross-entropy (nats)", yscale="log")
    ax_loss.legend()
    ax_acc.set(title="Test accuracy (Fig. 1a)", xlabel="training step",
               ylabel="accuracy (%)")
    ax_acc.legend()
    return fig


def plot_histogram_heatmaps(histories):
    """Small multiples: one heat map per (layer, run) of the sigmoid-input density.

    Rows are hidden layers, columns the runs; x is the training step, y the value of the
    sigmoid input, colour the density (log scale, shared by all panels).
    """
    from matplotlib.colors import LogNorm

    histories = check_histories(histories)
    first = next(iter(histories.values()))
    dens = {label: hist_density(h) for label, h in histories.items()}
    top = max(d.max() for d in dens.values())
    norm = LogNorm(vmin=top * 1e-4, vmax=top)
    n_rows, n_cols = first.n_layers, len(histories)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 2.3 * n_rows),
                             sharex=True, sharey=True, squeeze=False)
    step = first.steps[1] - first.steps[0] if len(first.steps) > 1 else 1
    x_edges = np.append(first.steps - step / 2, first.steps[-1] + step / 2)
    for col, (label, h) in enumerate(histories.items()):
        for row in range(n_rows):
            ax = axes[row, col]
            d = np.ma.masked_less_equal(dens[label][:, row, :].T, 0)
            mesh = ax.pcolormesh(x_edges, h.hist_edges, d, norm=norm, shading="flat")
            ax.grid(False)
            ax.set_title(f"{label}: layer {row + 1}", color=history_color(h))
            if col == 0:
                ax.set_ylabel("sigmoid input z")
            if row == n_rows - 1:
                ax.set_xlabel("training step")
    fig.colorbar(mesh, ax=axes, label="probability density (per unit of z)", shrink=0.8)
    fig.suptitle("Histogram of all sigmoid inputs of a layer, at each checkpoint")
    return fig


def plot_percentile_bands(histories, *, unit: int = 0):
    """Fig. 1(b, c): 15-85th percentile band and median of one unit's input by layer."""
    histories = check_histories(histories)
    first = next(iter(histories.values()))
    unit = check_unit(unit, first)
    fig, axes = plt.subplots(1, first.n_layers, figsize=(3.4 * first.n_layers, 3.2),
                             sharey=True, squeeze=False)
    for layer, ax in enumerate(axes[0], start=1):
        for label, h in histories.items():
            draw_percentile_band(ax, h, layer, unit, color=history_color(h),
                                 label=label)
        ax.set(title=f"layer {layer}, unit {unit}", xlabel="training step")
    axes[0, 0].set_ylabel("sigmoid input z\n(15th, 50th, 85th percentile)")
    axes[0, 0].legend(loc="upper left")
    fig.suptitle(f"Input of unit {unit} over the probe set: median (line), "
                 "15th to 85th percentile (band)")
    return fig


def plot_drift(histories):
    """Drift of the unit means per interval, one panel per layer, log scale."""
    from bn_helpers.training import drift_per_interval

    histories = check_histories(histories)
    mean_drift = {label: drift_per_interval(h)[0] for label, h in histories.items()}
    first = next(iter(histories.values()))
    fig, axes = plt.subplots(1, first.n_layers, figsize=(3.4 * first.n_layers, 3.0),
                             sharey=True, squeeze=False)
    for label, h in histories.items():
        for layer, ax in enumerate(axes[0], start=1):
            ax.plot(h.steps[1:], mean_drift[label][layer - 1], color=history_color(h),
                    label=label)
    interval = first.steps[1] - first.steps[0]
    for layer, ax in enumerate(axes[0], start=1):
        ax.set(title=f"layer {layer}", xlabel="training step (end of interval)",
               yscale="log")
    axes[0, 0].set_ylabel("mean over units k of\n"
                          r"$|\mu_{c,k} - \mu_{c-1,k}|$ (units of z)")
    axes[0, 0].legend()
    fig.suptitle("Drift of the unit means, interval by interval "
                 f"({interval} steps each)")
    return fig


# ------------------------------------------------- legibility at notebook width
# JupyterLab shows a figure at its PNG size, shrunk (never enlarged) to fit a column of
# about 900 px; the inline backend saves the PNG at fig.dpi with bbox_inches="tight".
COLUMN_PX = 900
MIN_TEXT_PX = 9.0
MAX_HEIGHT_PX = 700
GUARD_TAG = "FIGURE GUARD"


def _drawn_texts(fig):
    """Draw `fig` with Agg; return [(Text, window extent)] of every text drawn."""
    import matplotlib.text as mtext
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn = []
    original = mtext.Text.draw

    def recording_draw(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))

    own = fig.canvas  # another backend's canvas (ipympl, ...) is put back after
    canvas = own if isinstance(own, FigureCanvasAgg) else FigureCanvasAgg(fig)
    mtext.Text.draw = recording_draw
    try:
        canvas.draw()
        renderer = canvas.get_renderer()
    finally:
        mtext.Text.draw = original
        if canvas is not own:
            fig.set_canvas(own)
    return drawn, renderer


def _describe(text) -> str:
    words = " ".join(text.get_text().split())
    return repr(words if len(words) <= 40 else words[:37] + "...")


def legibility_problems(fig, *, tight: bool = True, column_px: int = COLUMN_PX,
                        min_text_px: float = MIN_TEXT_PX,
                        max_height_px: int = MAX_HEIGHT_PX) -> list[str]:
    """What would be hard to read when `fig` is shown in a notebook column.

    The PNG is fig.dpi per inch, cropped to the drawn content when `tight` (as the
    inline backend does; widgets show the whole canvas: tight=False), and shrunk to
    `column_px` if wider. Reports text under `min_text_px` (font size in pt x dpi / 72
    x shrink factor), text boxes that overlap, text cut off by the canvas edge, and a
    shown height over `max_height_px`. Returns [] when the figure reads well.
    """
    drawn, renderer = _drawn_texts(fig)
    dpi = fig.dpi
    if tight:
        box = fig.get_tightbbox(renderer)  # inches
        width_px, height_px = box.width * dpi, box.height * dpi
    else:
        width_px, height_px = fig.bbox.width, fig.bbox.height
    scale = min(1.0, column_px / width_px)
    problems = []
    if height_px * scale > max_height_px:
        problems.append(f"{height_px * scale:.0f} px tall at {column_px} px width "
                        f"(limit {max_height_px}; PNG {width_px:.0f} x "
                        f"{height_px:.0f} px)")
    small = sorted((text.get_fontsize() * dpi / 72 * scale, _describe(text))
                   for text, _ in drawn)
    small = [(px, words) for px, words in small if px < min_text_px]
    if small:
        names = ", ".join(dict.fromkeys(words for _, words in small[:4]))
        problems.append(f"{len(small)} text(s) under {min_text_px:g} px, smallest "
                        f"{small[0][0]:.1f} px ({names}{', ...' * (len(small) > 4)}) "
                        f"in a {width_px:.0f} px wide PNG")
    for i, (a, box_a) in enumerate(drawn):
        for b, box_b in drawn[i + 1:]:
            dx = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            dy = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if dx > 1 and dy > 1:  # more than a pixel of shared area
                problems.append(f"text {_describe(a)} overlaps {_describe(b)}")
    if not tight:
        for text, box in drawn:
            if box.x0 < -1 or box.y0 < -1 or box.x1 > fig.bbox.width + 1 \
                    or box.y1 > fig.bbox.height + 1:
                problems.append(f"text {_describe(text)} is cut off by the edge")
    return problems


def _figure_name(fig) -> str:
    title = fig.get_suptitle()
    for ax in fig.axes:
        title = title or ax.get_title()
    return repr(" ".join(title.split())[:50]) if title else "untitled figure"


def _report(fig) -> None:
    import sys

    try:
        problems = legibility_problems(fig)
    except Exception as err:  # a broken check must not hide the figure
        problems = [f"could not check: {type(err).__name__}: {err}"]
    for problem in problems:
        print(f"{GUARD_TAG}: {_figure_name(fig)}: {problem}", file=sys.stderr)


def _guarded(show):
    def checked(fig, *args, **kwargs):
        _report(fig)
        return show(fig, *args, **kwargs)

    checked.figure_guard = True
    return checked


def install_figure_guard(shell=None) -> None:
    """Check every figure a notebook shows; print its problems to stderr.

    Wraps IPython's figure printer (``pylabtools.print_figure``, which the inline
    backend's PNG formatter calls when it is activated later) and the PNG formatter
    for Figures if one is registered already, so figures shown by the inline backend,
    by display(fig) and as a cell's value are all checked. Each problem is one stderr
    line starting with GUARD_TAG; the figure is still shown. Load it with
    ``%load_ext bn_helpers.plots`` or start the kernel with ``--ext=bn_helpers.plots``;
    collect the lines with figure_guard_failures(nb).
    """
    from IPython.core import pylabtools
    from matplotlib.figure import Figure

    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None:
        raise RuntimeError("install_figure_guard needs a running IPython kernel")
    if not getattr(pylabtools.print_figure, "figure_guard", False):
        pylabtools.print_figure = _guarded(pylabtools.print_figure)
    png = shell.display_formatter.formatters["image/png"]
    try:
        show = png.lookup_by_type(Figure)
    except KeyError:
        return  # the inline backend registers (the guarded) print_figure later
    if not getattr(show, "figure_guard", False) and not (
            getattr(getattr(show, "func", None), "figure_guard", False)):
        png.for_type(Figure, _guarded(show))


def load_ipython_extension(shell) -> None:
    """``%load_ext bn_helpers.plots``: install the figure guard in this kernel."""
    install_figure_guard(shell)


def figure_guard_profile(ipythondir) -> str:
    """Write an IPython profile that loads the figure guard in every kernel.

    For a test that cannot pass kernel arguments: set the environment variable
    IPYTHONDIR to the returned path before kernels start. Returns it as a str.
    """
    from pathlib import Path

    profile = Path(ipythondir) / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(
        'c.InteractiveShellApp.extensions = ["bn_helpers.plots"]\n')
    return str(ipythondir)


def figure_guard_failures(nb) -> list[str]:
    """The figure guard's lines in an executed notebook, as 'cell ID: problem'."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                found += [f"cell {cell.get('id', '?')}: {line}"
                          for line in output.get("text", "").splitlines()
                          if line.startswith(GUARD_TAG)]
    return list(dict.fromkeys(found))  # a figure shown twice counts once
