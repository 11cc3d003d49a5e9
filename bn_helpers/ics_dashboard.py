"""What a deep sigmoid net's layers see, and send back, during training (notebook 01).

`record` trains a net with plain SGD (`training.sgd_steps`) and, at log-spaced
checkpoints, feeds a fixed probe set through it and records per hidden layer:

* forward: the output of the hidden Linear ("Wu": with BN the pre-BN input, without BN
  it is Wu + b, which is z itself) and the sigmoid input z, per unit (mean, std over the
  probe) and pooled (a histogram); the share of saturated sigmoids, |z| > SAT_LIMIT;
* backward: the gradient of the probe's summed loss with respect to each sigmoid output
  h (one histogram and its std per layer), as in Karpathy's "makemore" lecture 3;
* every step: the update:data ratio std(lr * dW) / std(W) of each hidden weight matrix,
  from the update SGD really made.

The figures below take {label: Trace}; the explorer's frames are drawn here too and the
widget that shows them lives in `widgets.ics_dashboard`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import (LogFormatterSciNotation, LogLocator, NullFormatter,
                               NullLocator)
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from bn_helpers import _validate as v
from bn_helpers import plots
from bn_helpers.models import activation_modules
from bn_helpers.training import (_as_tensor, _check_input_width, _torch_threads,
                                 sgd_steps)

__all__ = ["SAT_LIMIT", "Z_EDGES", "Trace", "log_checkpoints", "layer_values",
           "saturated_fraction", "update_to_data", "record",
           "plot_checkpoint_histograms", "plot_gradient_histograms", "plot_over_time",
           "ExplorerFrames"]

SAT_LIMIT = 4.0  # sigmoid'(4) = 0.018, 7 % of its peak 0.25
Z_EDGES = np.linspace(-30.0, 30.0, 241)  # histogram bins of Wu and z (0.25 wide)
GRAD_BINS = 80
# explorer frames: 11 in drawn 880 px wide; 9 pt is 10 px at 900 px notebook width
FRAME_RC = {"font.size": 9.0, "axes.titlesize": 9.0, "axes.labelsize": 9.0,
            "legend.fontsize": 9.0, "axes.titley": 1.03}  # fixed: no title layout pass


@dataclass(frozen=True, eq=False)
class Trace:
    """What `record` saw. C checkpoints, L hidden layers of H units, S steps.

    steps:         (C,) checkpoint steps, log-spaced, 0 = before the first update
    loss:          (S,) mini-batch loss of every step
    test_accuracy: (C,) accuracy on the eval set (BN in inference mode)
    wu_mean, wu_std, z_mean, z_std: (C, L, H) per-unit mean and std (divide by n) over
                   the probe set of the hidden Linear's output and of the sigmoid input
    wu_hist, z_hist: (C, L, B) counts pooled over units and probe examples, bins
                   Z_EDGES; values beyond them count in the end bins
    saturated:     (C, L) share of probe values with |z| > SAT_LIMIT
    grad_std:      (C, L) std of d(summed probe loss)/dh over examples and units
    grad_hist:     (C, L, B') counts of that gradient (B' = GRAD_BINS), bins
                   grad_edges (C, L, B' + 1), symmetric about 0 at each checkpoint
    update_ratio:  (S, L) std(lr * grad W) / std(W before the update), each step
    config:        seed, lr, steps, init_std, batchnorm, sizes, n_probe
    """

    steps: np.ndarray
    loss: np.ndarray
    test_accuracy: np.ndarray
    wu_mean: np.ndarray
    wu_std: np.ndarray
    z_mean: np.ndarray
    z_std: np.ndarray
    wu_hist: np.ndarray
    z_hist: np.ndarray
    saturated: np.ndarray
    grad_std: np.ndarray
    grad_hist: np.ndarray
    grad_edges: np.ndarray
    update_ratio: np.ndarray
    config: dict = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return self.z_mean.shape[1]


def log_checkpoints(steps: int, n: int) -> np.ndarray:
    """0 and about n - 1 log-spaced steps from 1 to `steps` (duplicates dropped)."""
    steps, n = v.positive_int("steps", steps), v.positive_int("n", n)
    if n < 2:
        raise ValueError(f"n must be at least 2 (step 0 and the last step), got {n}")
    return np.unique(np.r_[0, np.round(np.geomspace(1, steps, n - 1))].astype(int))


def _hidden_linears(model: nn.Module) -> list[nn.Linear]:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    n_hidden = len(activation_modules(model))
    if len(linears) != n_hidden + 1:
        raise ValueError(f"model must be Linear layers each followed by a nonlinearity "
                         f"and a last Linear, got {len(linears)} Linear and {n_hidden} "
                         f"nonlinearities")
    return linears[:-1]


def layer_values(model: nn.Module, x, *, grad_of=None):
    """Hidden Linear outputs, sigmoid inputs and (optionally) loss gradients on x.

    x: (n, D_in), n >= 2; BN layers normalise with x's own statistics (training-mode
    arithmetic); mode and running statistics are restored afterwards.
    grad_of: None, or labels y (n,) int: then also d(sum_i loss_i)/dh for each sigmoid
    output h (the mean cross-entropy times n).
    Returns (wu, z, dh): lists of L float32 tensors (n, H_l); dh is None without labels.
    """
    x = _as_tensor("x", x, ndim=2, floating=True)
    _check_input_width(model, "x", x)
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 examples (BN needs a batch), "
                         f"got {len(x)}")
    wu, z, h = [], [], []
    hooks = [m.register_forward_hook(lambda _m, _i, out: wu.append(out))
             for m in _hidden_linears(model)]
    for m in activation_modules(model):
        def hook(_m, inputs, out):
            z.append(inputs[0])
            h.append(out)
        hooks.append(m.register_forward_hook(hook))
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    was_training = model.training
    try:
        model.train()
        with torch.set_grad_enabled(grad_of is not None):
            logits = model(x)
        dh = None
        if grad_of is not None:
            y = _as_tensor("grad_of", grad_of, ndim=1, floating=False)
            loss = F.cross_entropy(logits, y, reduction="sum")
            dh = [g.detach() for g in torch.autograd.grad(loss, h)]
    finally:
        for hk in hooks:
            hk.remove()
        model.train(was_training)
        with torch.no_grad():
            for k, b in model.named_buffers():
                b.copy_(buffers[k])
    return [a.detach() for a in wu], [a.detach() for a in z], dh


def saturated_fraction(z, limit: float = SAT_LIMIT) -> float:
    """Share of the entries of z with |z| > limit (sigmoid'(z) < sigmoid'(limit))."""
    z = torch.as_tensor(z)
    return float((z.abs() > limit).double().mean())


def update_to_data(weight: torch.Tensor, grad: torch.Tensor, lr: float) -> float:
    """std(lr * grad) / std(weight): how large one SGD update is next to the weights."""
    return float((lr * grad).std() / weight.std())


def _hist(a: torch.Tensor, edges: np.ndarray) -> np.ndarray:
    lo, hi = float(edges[0]), float(edges[-1])
    return torch.histc(a.clamp(lo, hi), len(edges) - 1, lo, hi).numpy().astype(np.int64)


def record(model: nn.Module, train_x, train_y, *, eval_x, eval_y, probe_x, probe_y,
           lr: float, steps: int, checkpoints, seed: int, batch_size: int = 60,
           init_std: float | None = None, progress: bool = True,
           desc: str = "training") -> Trace:
    """Train `model` in place with plain SGD; return the Trace of module docstring.

    checkpoints: increasing steps in [0, steps] (e.g. log_checkpoints(steps, 16)).
    probe_x (n, D_in), probe_y (n,): the fixed inputs (and labels, for gradients).
    init_std: only stored in the config (for labels).
    """
    train_x = _as_tensor("train_x", train_x, ndim=2, floating=True)
    train_y = _as_tensor("train_y", train_y, ndim=1, floating=False)
    eval_x = _as_tensor("eval_x", eval_x, ndim=2, floating=True)
    eval_y = _as_tensor("eval_y", eval_y, ndim=1, floating=False)
    probe_x = _as_tensor("probe_x", probe_x, ndim=2, floating=True)
    probe_y = _as_tensor("probe_y", probe_y, ndim=1, floating=False)
    lr, steps = v.positive_float("lr", lr), v.positive_int("steps", steps)
    checkpoints = np.asarray(checkpoints)
    if checkpoints.ndim != 1 or not len(checkpoints) \
            or not np.issubdtype(checkpoints.dtype, np.integer) \
            or np.any(np.diff(checkpoints) <= 0) or checkpoints[0] < 0 \
            or checkpoints[-1] > steps:
        raise ValueError(f"checkpoints must be increasing ints in [0, {steps}], "
                         f"got {checkpoints!r}")
    linears = _hidden_linears(model)
    n_layers, n_c = len(linears), len(checkpoints)
    width = linears[0].out_features
    shape = (n_c, n_layers, width)
    out = {k: np.zeros(shape) for k in ("wu_mean", "wu_std", "z_mean", "z_std")}
    out["wu_hist"] = np.zeros((n_c, n_layers, len(Z_EDGES) - 1), dtype=np.int64)
    out["z_hist"] = np.zeros_like(out["wu_hist"])
    out["saturated"] = np.zeros((n_c, n_layers))
    out["grad_std"] = np.zeros((n_c, n_layers))
    out["grad_hist"] = np.zeros((n_c, n_layers, GRAD_BINS), dtype=np.int64)
    out["grad_edges"] = np.zeros((n_c, n_layers, GRAD_BINS + 1))
    accuracy = np.zeros(n_c)
    ratio = np.zeros((steps, n_layers))
    losses = torch.zeros(steps)

    def snapshot(c: int) -> None:
        wu, z, dh = layer_values(model, probe_x, grad_of=probe_y)
        for i in range(n_layers):
            for name, a in (("wu", wu[i]), ("z", z[i])):
                a64 = a.double()
                out[f"{name}_mean"][c, i] = a64.mean(0).numpy()
                out[f"{name}_std"][c, i] = a64.std(0, correction=0).numpy()
                out[f"{name}_hist"][c, i] = _hist(a, Z_EDGES)
            out["saturated"][c, i] = saturated_fraction(z[i])
            top = float(dh[i].abs().max()) or 1.0
            edges = np.linspace(-top, top, GRAD_BINS + 1)
            out["grad_edges"][c, i] = edges
            out["grad_hist"][c, i] = _hist(dh[i], edges)
            out["grad_std"][c, i] = float(dh[i].double().std())
        model.eval()
        with torch.no_grad():
            accuracy[c] = float((model(eval_x).argmax(1) == eval_y).double().mean())
        model.train()

    weights = [m.weight for m in linears]
    with _torch_threads(1):
        c = 0
        if checkpoints[0] == 0:
            snapshot(0)
            c = 1
        bar = tqdm(sgd_steps(model, train_x, train_y, lr=lr, steps=steps, seed=seed,
                             batch_size=batch_size),
                   total=steps, desc=desc, disable=not progress, mininterval=0.5)
        for step, loss in bar:
            losses[step - 1] = loss
            with torch.no_grad():
                for i, w in enumerate(weights):  # w is after the update: undo it
                    ratio[step - 1, i] = update_to_data(w + lr * w.grad, w.grad, lr)
            if c < n_c and step == checkpoints[c]:
                snapshot(c)
                c += 1
    config = dict(seed=seed, lr=lr, steps=steps, init_std=init_std,
                  batchnorm=any(isinstance(m, nn.BatchNorm1d) for m in model.modules()),
                  sizes=(linears[0].in_features,) + tuple(m.out_features
                                                           for m in linears),
                  n_probe=len(probe_x), batch_size=batch_size)
    return Trace(steps=checkpoints.copy(), loss=losses.numpy(), test_accuracy=accuracy,
                 update_ratio=ratio, config=config, **out)


# ------------------------------------------------------------------------- figures

def _color(trace: Trace) -> str:
    return plots.BN_COLOR if trace.config.get("batchnorm") else plots.NO_BN_COLOR


def _density(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return counts / (counts.sum(axis=-1, keepdims=True) * np.diff(edges))


def _check_traces(traces) -> dict:
    if not isinstance(traces, dict) or not traces \
            or not all(isinstance(t, Trace) for t in traces.values()):
        raise TypeError("traces must be a non-empty dict {label: ics_dashboard.Trace}, "
                        f"got {type(traces).__name__}")
    first = next(iter(traces.values()))
    for label, t in traces.items():
        if not np.array_equal(t.steps, first.steps) or t.n_layers != first.n_layers:
            raise ValueError(f"traces[{label!r}] must share checkpoints and layer "
                             "count with the first Trace")
    return traces


def _step_index(trace: Trace, step) -> int:
    hits = np.flatnonzero(trace.steps == step)
    if isinstance(step, bool) or not len(hits):
        raise ValueError(f"step must be a recorded checkpoint {list(trace.steps)}, "
                         f"got {step!r}")
    return int(hits[0])


def _xlim(hists: list[np.ndarray], q: float = 0.002) -> tuple[float, float]:
    """Range holding all but a share q of the pooled histogram counts, padded."""
    counts = sum(h.reshape(-1, h.shape[-1]).sum(0) for h in hists)
    cum = np.cumsum(counts) / counts.sum()
    lo = Z_EDGES[np.searchsorted(cum, q / 2)]
    hi = Z_EDGES[np.searchsorted(cum, 1 - q / 2) + 1]
    half = max(abs(lo), abs(hi), 1.0) * 1.1
    return -half, half


def plot_checkpoint_histograms(traces, *, layers, steps):
    """Grid of linear-density histograms: rows = layers, columns = checkpoints.

    Each panel: z of every trace (its colour, filled outline) and, for BN traces, the
    pre-BN Wu (grey). traces: {label: Trace} of one init scale.
    """
    traces = _check_traces(traces)
    first = next(iter(traces.values()))
    cols = [_step_index(first, s) for s in steps]
    fig, axes = plt.subplots(len(layers), len(cols),
                             figsize=(9.5, 1.55 * len(layers) + 0.9), squeeze=False,
                             sharey="row", layout="constrained")
    for r, layer in enumerate(layers):
        i = layer - 1
        lim = _xlim([t.z_hist[:, i] for t in traces.values()]
                    + [t.wu_hist[:, i] for t in traces.values()])
        for k, c in enumerate(cols):
            ax = axes[r, k]
            for label, t in traces.items():
                if t.config.get("batchnorm"):
                    ax.stairs(_density(t.wu_hist[c, i], Z_EDGES), Z_EDGES, color="0.45",
                              linewidth=1.0, label=f"{label}: Wu (pre-BN)")
                ax.stairs(_density(t.z_hist[c, i], Z_EDGES), Z_EDGES, color=_color(t),
                          linewidth=1.4, label=f"{label}: z")
            ax.set_xlim(lim)
            for side in (-1, 1):  # where sigmoid'(z) < 0.018
                label = f"|z| > {SAT_LIMIT:g}" if side < 0 else None
                ax.axvspan(side * SAT_LIMIT, side * lim[1], color="0.92", zorder=0,
                           linewidth=0, label=label)
            if r == 0:
                ax.set_title(f"step {first.steps[c]}")
            if k == 0:
                ax.set_ylabel(f"layer {layer}\ndensity (1/unit)")
            if r == len(layers) - 1:
                ax.set_xlabel("value (z or Wu)")
        top = max(_visible_max(_density(getattr(t, f"{key}_hist")[cols, i], Z_EDGES),
                               lim)
                  for t in traces.values() for key in ("z", "wu"))
        axes[r, 0].set_ylim(0, 1.08 * top)  # shared by the row
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels),
               frameon=False)
    init = first.config.get("init_std")
    fig.suptitle(f"Sigmoid inputs z and pre-BN inputs Wu, init std {init}: "
                 "all units of a layer on the probe set")
    return fig


def plot_gradient_histograms(traces, *, step: int = 0):
    """Karpathy's picture: per-layer histograms of dloss/dh at one checkpoint.

    One panel per trace; a line per hidden layer; the legend gives each layer's std.
    """
    traces = _check_traces(traces)
    n = len(traces)
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(9.5, 2.7 * nrows + 0.4),
                             squeeze=False, layout="constrained")
    cmap = plt.get_cmap("viridis")
    for ax, (label, t) in zip(axes.flat, traces.items()):
        c = _step_index(t, step)
        for i in range(t.n_layers):
            edges = t.grad_edges[c, i]
            dens = _density(t.grad_hist[c, i], edges)
            mid = (edges[:-1] + edges[1:]) / 2
            ax.plot(mid, dens, color=cmap(i / max(t.n_layers - 1, 1)),
                    label=f"layer {i + 1}: std {t.grad_std[c, i]:.0e}")
        top = np.percentile(np.abs(t.grad_edges[c]), 100)
        ax.set(xlim=(-top, top), yscale="log", title=label,
               xlabel=r"$\partial \ell / \partial h$ (gradient per sigmoid output)",
               ylabel="density (log)")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
        ax.legend(loc="upper right", fontsize=7.5, ncol=2, handlelength=1.0,
                  columnspacing=0.8)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.suptitle(f"Gradients reaching each layer's sigmoid outputs at step {step}")
    return fig


def _band(ax, x, runs: np.ndarray, color, label, *, log=False):
    """Mean over seeds (line) and min-max over seeds (band); runs (n_seeds, T)."""
    mid = np.exp(np.log(runs).mean(0)) if log else runs.mean(0)
    ax.fill_between(x, runs.min(0), runs.max(0), color=color, alpha=0.25, linewidth=0)
    ax.plot(x, mid, color=color, label=label)


def _log_time(ax, last: int) -> None:
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.4)
    ax.set_xlim(0, last)
    ax.xaxis.set_minor_locator(NullLocator())  # minor ticks cost most of a redraw


def plot_over_time(groups, *, layer: int):
    """Saturation, gradient size and update:data ratio over (log) time, seeds banded.

    groups: {init label: {"no BN": [Trace per seed], "BN": [...]}}; one column per
    init scale; `layer`: the hidden layer whose saturation is shown (gradient: first
    and last hidden layer; update:data: the same `layer`).
    """
    cols = list(groups)
    fig, axes = plt.subplots(3, len(cols), figsize=(9.5, 6.6), squeeze=False,
                             sharex=True, layout="constrained")
    for k, init in enumerate(cols):
        for label, runs in groups[init].items():
            t0 = runs[0]
            color = _color(t0)
            i = layer - 1
            sat = np.stack([t.saturated[:, i] for t in runs]) * 100
            _band(axes[0, k], t0.steps, sat, color, label)
            last = t0.n_layers - 1
            for j, style in ((0, ":"), (last, "-")):
                g = np.stack([t.grad_std[:, j] for t in runs])
                _band(axes[1, k], t0.steps, g, color, f"{label}, layer {j + 1}",
                      log=True)
                axes[1, k].lines[-1].set_linestyle(style)
            s = np.arange(1, t0.config["steps"] + 1)
            r = np.stack([_running_median(t.update_ratio[:, i], 9) for t in runs])
            _band(axes[2, k], s, r, color, label, log=True)
        axes[0, k].set(title=f"init std {init}", ylim=(0, 100))
        axes[1, k].set(yscale="log")
        axes[2, k].set(yscale="log", xlabel="training step (log scale after 1)")
        for ax in axes[1:, k]:  # labels at 1, 2, 5 x 10^k on a short log axis
            lo, hi = ax.get_ylim()
            short = np.log10(hi / lo) < 2
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if short
                                                  else (1.0,)))
            ax.yaxis.set_minor_formatter(NullFormatter())
        axes[2, k].axhline(1e-3, color="0.4", linewidth=0.8, linestyle="--")
        for ax in axes[:, k]:
            _log_time(ax, int(groups[init]["BN"][0].steps[-1]))
    axes[0, 0].set_ylabel(f"layer {layer}: % of\nsigmoids with |z| > {SAT_LIMIT:g}")
    axes[1, 0].set_ylabel(r"std of $\partial\ell/\partial h$" + "\n(layers 1 dotted, "
                          f"{groups[cols[0]]['BN'][0].n_layers} solid)")
    axes[2, 0].set_ylabel(f"layer {layer}: update:data\nstd(lr dW) / std(W)")
    axes[0, 0].legend(loc="center right")
    axes[1, -1].legend(loc="lower left", fontsize=7.5, ncol=2)
    fig.suptitle("The gradient side: mean over seeds (line), min to max (band)")
    return fig


def _running_median(a: np.ndarray, k: int) -> np.ndarray:
    """Median of the window of k steps ending at each step (shorter at the start)."""
    out = np.empty_like(a)
    for s in range(len(a)):
        out[s] = np.median(a[max(0, s - k + 1):s + 1])
    return out


# ------------------------------------------------------------ explorer frames

class ExplorerFrames:
    """PNG frames of the explorer: one per (layer, checkpoint) for a pair of traces.

    pair: {"no BN": Trace, "BN": Trace} of one init scale. The figure and its axes are
    made once; `frames(layer)` swaps in the layer's data, draws the static parts once
    (trajectories, step-0 outlines, axes) and blits only what moves with the step
    (histograms, markers, title), so a frame costs a PNG encoding and little more.
    """

    def __init__(self, pair: dict, *, units: int = 20, dpi: int = 80):
        self.pair = _check_traces(pair)
        self.plain, self.bn = pair["no BN"], pair["BN"]
        self.units = units
        with plt.rc_context(FRAME_RC):
            self.fig = Figure(figsize=(11.0, 6.0), dpi=dpi, layout="none")
            FigureCanvasAgg(self.fig)
            self.fig.subplots_adjust(left=0.06, right=0.99, bottom=0.085, top=0.885,
                                     wspace=0.32, hspace=0.62)
            self.axes = self.fig.subplots(2, 4)
            self._style_axes()
            self.title = self.fig.suptitle("", fontsize=10.5, animated=True)
        self.added: list = []

    def _style_axes(self) -> None:
        (ax_wu, ax_z, ax_gp, ax_gb), (ax_m, ax_s, ax_sat, ax_ud) = self.axes
        ax_wu.set(title="BN net: Wu (pre-BN)", xlabel="Wu", ylabel="density (1/unit)")
        ax_z.set(title="sigmoid input z", xlabel="z")
        for ax, name in ((ax_gp, "no BN"), (ax_gb, "BN")):
            ax.set(title=f"{name}: " r"$\partial\ell/\partial h$, log density",
                   yscale="log", xlabel="gradient")
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
            ax.yaxis.set_minor_locator(NullLocator())
        ax_m.set(title=f"unit means ({self.units} units)", ylabel="z; grey: BN's Wu")
        ax_s.set(title=f"unit stds ({self.units} units)", yscale="log")
        ax_sat.set(title=f"% sigmoids with |z| > {SAT_LIMIT:g}", ylim=(0, 100))
        ax_ud.set(title="update:data, std(lr dW) / std(W)", yscale="log")
        for ax in (ax_s, ax_ud):  # labels at 1, 2, 5 x 10^k: more than one per axis
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
        last = int(self.plain.steps[-1])
        for ax in self.axes[1]:
            _log_time(ax, last)
            ax.set_xlabel("training step (log)")
        self.markers = [ax.axvline(0, color="0.2", linewidth=1.0, animated=True)
                        for ax in self.axes[1]]

    def frames(self, layer: int) -> list[bytes]:
        """PNG bytes of `layer` (1..L) at every checkpoint, in order."""
        layer = plots.check_layer(layer, self.plain.n_layers)
        with plt.rc_context(FRAME_RC):
            return self._frames(layer)

    def _add(self, artist):
        self.added.append(artist)
        return artist

    def _frames(self, layer: int) -> list[bytes]:
        fig, plain, bn, i = self.fig, self.plain, self.bn, layer - 1
        for artist in self.added:
            artist.remove()
        self.added.clear()
        (ax_wu, ax_z, ax_gp, ax_gb), (ax_m, ax_s, ax_sat, ax_ud) = self.axes
        steps = plain.steps
        # row 1: distributions at this step (grey dashed: step 0)
        dens = {("wu", "BN"): _density(bn.wu_hist[:, i], Z_EDGES),
                ("z", "no BN"): _density(plain.z_hist[:, i], Z_EDGES),
                ("z", "BN"): _density(bn.z_hist[:, i], Z_EDGES)}
        lims = {"wu": _xlim([bn.wu_hist[:, i]]),
                "z": _xlim([plain.z_hist[:, i], bn.z_hist[:, i]])}
        moving = []
        for (key, name), d in dens.items():
            ax = ax_wu if key == "wu" else ax_z
            t = self.pair[name]
            if key == "wu":
                self._add(ax.stairs(d[0], Z_EDGES, color="0.6", linestyle="--",
                                    linewidth=1.0))
            patch = self._add(ax.stairs(d[0], Z_EDGES, color=_color(t), linewidth=1.5,
                                        label=name, animated=True))
            moving.append((patch, d, Z_EDGES))
        for key, ax in (("wu", ax_wu), ("z", ax_z)):
            top = max(_visible_max(d, lims[key]) for (k, _), d in dens.items()
                      if k == key)
            ax.set(xlim=lims[key], ylim=(0, 1.08 * top))
        self._add(ax_z.legend(loc="upper right", handlelength=1.2))
        for t, ax in ((plain, ax_gp), (bn, ax_gb)):
            top = t.grad_edges[:, i, -1].max()
            d = _density(t.grad_hist[:, i], t.grad_edges[:, i])
            pos = d[d > 0]
            ax.set(xlim=(-top, top), ylim=(pos.min() * 0.5, pos.max() * 2))
            line = self._add(ax.stairs(np.maximum(d[0], 1e-30), t.grad_edges[0, i],
                                       color=_color(t), linewidth=1.3, animated=True))
            moving.append((line, np.maximum(d, 1e-30), t.grad_edges[:, i]))
        # row 2: over time (log time axis), `units` units each
        u = slice(0, self.units)
        for ax, stat in ((ax_m, "mean"), (ax_s, "std")):
            ax.dataLim.set_points(np.array([[0.0, np.inf], [1.0, -np.inf]]))
            for t, key in ((plain, "z"), (bn, "z"), (bn, "wu")):
                color = "0.6" if key == "wu" else _color(t)
                self._add(_unit_lines(ax, steps, getattr(t, f"{key}_{stat}")[:, i, u],
                                      color))
            ax.autoscale_view(scalex=False)
        for t in (plain, bn):
            self._add(ax_sat.plot(steps, 100 * t.saturated[:, i], color=_color(t))[0])
            s = np.arange(1, t.config["steps"] + 1)
            self._add(ax_ud.plot(s, _running_median(t.update_ratio[:, i], 9),
                                 color=_color(t))[0])
        self._add(ax_ud.axhline(1e-3, color="0.4", linewidth=0.8, linestyle="--"))
        ax_ud.relim()
        ax_ud.autoscale_view(scalex=False)
        fig.canvas.draw()
        background = fig.canvas.copy_from_bbox(fig.bbox)
        init = plain.config.get("init_std")
        pngs = []
        for c, step in enumerate(steps):
            fig.canvas.restore_region(background)
            for artist, d, edges in moving:
                artist.set_data(d[c], edges if edges.ndim == 1 else edges[c])
                fig.draw_artist(artist)
            for marker in self.markers:
                marker.set_xdata([step, step])
                fig.draw_artist(marker)
            self.title.set_text(f"init std {init}, layer {layer}, step {step}: test "
                                f"accuracy no BN {plain.test_accuracy[c]:.0%}, "
                                f"BN {bn.test_accuracy[c]:.0%}")
            fig.draw_artist(self.title)
            buf = io.BytesIO()
            rgba = np.asarray(fig.canvas.buffer_rgba())
            Image.fromarray(rgba[..., :3]).save(buf, format="png", compress_level=1)
            pngs.append(buf.getvalue())
        return pngs


def _unit_lines(ax, x: np.ndarray, y: np.ndarray, color) -> None:
    """One thin line per unit (columns of y), as one LineCollection (fast to draw)."""
    segments = np.stack([np.broadcast_to(x[:, None], y.shape), y], axis=-1)
    lines = ax.add_collection(LineCollection(segments.transpose(1, 0, 2), colors=color,
                                             linewidths=0.6, alpha=0.75))
    ax.update_datalim(np.c_[np.r_[x, x], np.r_[y.min(1), y.max(1)]])
    return lines


def _visible_max(dens: np.ndarray, lim) -> float:
    """Largest density in bins inside lim, over all checkpoints (dens (C, B))."""
    mid = (Z_EDGES[:-1] + Z_EDGES[1:]) / 2
    inside = (mid > lim[0]) & (mid < lim[1])
    return float(dens[:, inside].max())
