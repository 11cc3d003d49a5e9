"""Notebook 06's learning-rate lab: controls, a cache of runs, one figure per view.

``LRLab`` keeps every run it has seen (the shipped ablation's "none" and "bn" runs,
plus whatever it trained live) keyed by (setting, net, lr, seed). ``lab_widget`` shows
it: one picture per learning rate of the grid, rendered in the kernel and held in an
``ipywidgets.Stack`` whose ``selected_index`` is linked to the learning-rate slider with
``jslink``, so moving the slider switches pictures in the browser without a kernel
round trip. The other controls change the setting; a setting whose runs are not cached
yet trains them live (one configuration = the selected lr, both nets, every seed, as
one batched computation; lab.train_runs) with a progress bar, then redraws.
"""

from __future__ import annotations

import base64
import io
import os
import time

import ipywidgets as ipw
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from bn_helpers import lab, parallel, plots
from bn_helpers.widgets import caption

__all__ = ["NETS", "CONTROLS", "LRLab", "lab_widget", "draw_lab", "lab_frames",
           "plot_ablation", "steps_to", "stable_range"]

NETS = {"no BN": "none", "BN": "bn"}  # label -> lab norm
COLORS = {"no BN": plots.NO_BN_COLOR, "BN": plots.BN_COLOR}
# control -> (label, options, default); the order is the order on screen
CONTROLS = {
    "seeds": ("seeds", (3, 4, 5), 3),
    "steps": ("step budget", (200, 400, 600), 400),
    "init": ("initial weights", lab.INITS, "normal(0.1)"),
    "batch_size": ("batch size", (16, 60, 128), 60),
    "activation": ("activation", tuple(lab.ACTIVATIONS), "sigmoid"),
    "depth": ("hidden layers", (2, 3, 4), 3),
    "placement": ("BN placement", lab.PLACEMENTS, "before"),
}
NORM_LABELS = {"none": "no normalisation", "center": "centring only",
               "scale": "scaling only", "bn": "full BN", "wn": "weight norm"}
NORM_COLORS = {"none": plots.NO_BN_COLOR, "center": "#009E73", "scale": "#CC79A7",
               "bn": plots.BN_COLOR, "wn": "#E69F00"}


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished worker processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class LRLab:
    """The runs of the lab: shipped ones and live ones, one entry per run.

    ablation: {norm: lab.Runs} as lab.load_ablation returns (its "none" and "bn" runs
    fill the cache for the default setting at budgets 200, 400 and 600).
    """

    def __init__(self, train_x, train_y, eval_x, eval_y, ablation: dict):
        self.data = (train_x, train_y, eval_x, eval_y)
        self.lrs = np.asarray(lab.LR_GRID)
        self.cache: dict = {}
        self.last_train_s: float | None = None  # wall-clock of the last live training
        self.last_train_cpu_s: float | None = None
        for net, norm in NETS.items():
            runs = ablation[norm]
            for budget in CONTROLS["steps"][1]:
                c = int(np.searchsorted(runs.steps, budget))
                if c >= len(runs.steps) or runs.steps[c] != budget:
                    continue
                setting = lab.Setting(**{**runs.meta["setting"], "steps": budget})
                for r, (lr, seed) in enumerate(zip(runs.lrs, runs.seeds, strict=True)):
                    self.cache[(setting, net, float(lr), int(seed))] = (
                        runs.loss[r, :budget], float(runs.accuracy[r, c]))

    def missing(self, setting: lab.Setting, lr: float, n_seeds: int) -> list[int]:
        """Seeds of range(n_seeds) not cached for (setting, lr) in both nets."""
        return [s for s in range(n_seeds)
                if any((setting, net, float(lr), s) not in self.cache for net in NETS)]

    def train(self, setting: lab.Setting, lr: float, seeds) -> None:
        """One configuration: both nets at `lr` for `seeds`, batched, into the cache."""
        seeds = list(seeds)
        if not seeds:
            return
        x, y, ex, ey = self.data
        wall, cpu = time.perf_counter(), _cpu_seconds()
        # the two nets side by side, one per CPU core (the same numbers as one by one)
        trained = parallel.run_all(
            lambda norm: lab.train_runs(x, y, eval_x=ex, eval_y=ey, norm=norm,
                                        lrs=[lr] * len(seeds), seeds=seeds,
                                        setting=setting),
            list(NETS.values()), progress=False)
        for net, runs in zip(NETS, trained, strict=True):
            for r, seed in enumerate(seeds):
                self.cache[(setting, net, float(lr), seed)] = (
                    runs.loss[r], float(runs.accuracy[r, -1]))
        self.last_train_s = time.perf_counter() - wall
        self.last_train_cpu_s = _cpu_seconds() - cpu

    def view(self, setting: lab.Setting, n_seeds: int) -> dict:
        """{net: (loss (K, S, steps) nan where not cached, accuracy (K, S))}."""
        out = {}
        for net in NETS:
            loss = np.full((len(self.lrs), n_seeds, setting.steps), np.nan)
            acc = np.full((len(self.lrs), n_seeds), np.nan)
            for k, lr in enumerate(self.lrs):
                for s in range(n_seeds):
                    hit = self.cache.get((setting, net, float(lr), s))
                    if hit is not None:
                        loss[k, s], acc[k, s] = hit
            out[net] = (loss, acc)
        return out


def _smooth(a: np.ndarray, k: int = 20) -> np.ndarray:
    c = np.cumsum(np.insert(a, 0, 0.0, axis=-1), axis=-1)
    return (c[..., k:] - c[..., :-k]) / k


def _diverged_grid(loss: np.ndarray) -> np.ndarray:
    """(S, K) diverged flags from (K, S, steps) losses; nan rows (not run) -> False."""
    k, s, n = loss.shape
    flat = loss.reshape(k * s, n)
    ran = ~np.isnan(flat).all(axis=1)
    out = np.zeros(k * s, dtype=bool)
    out[ran] = lab.diverged(flat[ran])
    return out.reshape(k, s).T


def draw_lab(fig: Figure, lrs, view: dict, k: int, setting: lab.Setting) -> list:
    """Draw the lab's three panels for learning rate lrs[k] into `fig` (cleared).

    Returns the artists that depend on k (the lr markers, the loss panel's curves and
    its title); `lab_frames` redraws only those for the other learning rates.
    """
    fig.clear()
    ax_d, ax_a, ax_l = fig.subplots(1, 3)
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.22, top=0.9, wspace=0.32)
    n_seeds = next(iter(view.values()))[1].shape[1]
    for net, (loss, acc) in view.items():
        color = COLORS[net]
        ran = ~np.isnan(acc).any(axis=1)  # lrs with every seed cached
        with np.errstate(invalid="ignore", divide="ignore"):
            tail = loss[:, :, -max(1, setting.steps // 10):].mean(axis=2)
            ratio = np.where(np.isfinite(tail), tail / loss[:, :, 0], 1e3)
        ratio = np.clip(ratio, 1e-2, 1e3)
        if ran.any():
            ax_d.plot(lrs[ran], np.median(ratio[ran], axis=1), "o-", color=color,
                      label=net, markersize=4)
            ax_d.fill_between(lrs[ran], ratio[ran].min(axis=1), ratio[ran].max(axis=1),
                              color=color, alpha=0.25, linewidth=0)
            ax_a.plot(lrs[ran], 100 * acc[ran].mean(axis=1), "o-", color=color,
                      label=net, markersize=4)
            ax_a.fill_between(lrs[ran], 100 * acc[ran].min(axis=1),
                              100 * acc[ran].max(axis=1), color=color, alpha=0.25,
                              linewidth=0)
            star = lab.lr_star(lrs[ran], _diverged_grid(loss[ran]))
            if np.isfinite(star).all():
                ax_d.axvspan(star.min() * 0.97, star.max() * 1.03, color=color,
                             alpha=0.18, linewidth=0)
                ax_d.axvline(np.exp(np.log(star).mean()), color=color, linestyle="--",
                             linewidth=1.2)
    for ax in (ax_d, ax_a):
        ax.set_xscale("log")
        ax.set_xlim(lrs[0] / 1.5, lrs[-1] * 1.5)
        ax.set_xlabel("learning rate (log scale)")
    ax_d.axhline(1.0, color="0.4", linewidth=1.0)
    ax_d.text(lrs[0], 1.3, "diverged above", fontsize=9, color="0.3")
    ax_d.set(yscale="log", ylim=(1e-2, 2e3), title="Divergence: lr* (dashed, band)",
             ylabel="final loss / start loss")
    ax_a.set(ylim=(0, 100), title=f"Test accuracy after {setting.steps} steps",
             ylabel="test accuracy (%)")
    ax_a.axhline(10, color="0.5", linestyle=":", linewidth=1.0)
    ax_l.set(yscale="log", ylim=(0.02, 50), xlim=(0, setting.steps),
             xlabel="training step", ylabel="cross-entropy, mean of 20 steps")
    ax_a.legend(loc="lower left", fontsize=9)
    fig.text(0.5, 0.015, f"{n_seeds} seeds: line = median (left) / mean, "
             f"band = min-max. "
             f"init {setting.init}, m = {setting.batch_size}, {setting.activation}, "
             f"{setting.depth} hidden layers, BN {setting.placement} the activation",
             ha="center", fontsize=9)
    return _draw_lr(fig, lrs, view, k, setting)


def _draw_lr(fig: Figure, lrs, view: dict, k: int, setting: lab.Setting) -> list:
    """What shows learning rate lrs[k]: its markers, loss curves and title."""
    ax_d, ax_a, ax_l = fig.axes[:3]
    lr = lrs[k]
    out = [ax.axvline(lr, color="0.3", linestyle=":", linewidth=1.2)
           for ax in (ax_d, ax_a)]
    for net, (loss, _) in view.items():
        if not np.isnan(loss[k]).any():
            sm = _smooth(loss[k])
            steps = np.arange(20, setting.steps + 1)
            with np.errstate(invalid="ignore"):
                out += ax_l.plot(steps, np.nanmean(sm, axis=0), color=COLORS[net],
                                 label=net)
                out.append(ax_l.fill_between(steps, np.nanmin(sm, axis=0),
                                             np.nanmax(sm, axis=0), color=COLORS[net],
                                             alpha=0.25, linewidth=0))
    if np.isnan(view["BN"][0][k]).any():
        out.append(ax_l.text(0.5, 0.5, "not trained yet", ha="center",
                             transform=ax_l.transAxes))
    out.append(ax_l.set_title(f"Training loss at lr = {lab.lr_label(lr)}"))
    return out


def lab_frames(fig: Figure, lrs, view: dict, order, setting: lab.Setting):
    """Yield (k, PNG output) for each k in `order`, in that order.

    One full draw of what every learning rate shares (the divergence and accuracy
    panels, the axes); then, per learning rate, only its own artists are drawn onto a
    copy of that background (blitting): about 20x faster than a full draw each.
    """
    order = list(order)
    if not order:
        return
    artists = draw_lab(fig, lrs, view, order[0], setting)  # the last is the title
    for a in artists:
        a.set_animated(True)
    fig.canvas.draw()
    background = fig.canvas.copy_from_bbox(fig.bbox)
    for i, k in enumerate(order):
        if i:
            for a in artists[:-1]:  # the title stays: _draw_lr sets its text
                a.remove()
            artists = _draw_lr(fig, lrs, view, k, setting)
            for a in artists:
                a.set_animated(True)
        fig.canvas.restore_region(background)
        for a in artists:
            fig.draw_artist(a)
        yield k, _png_of_buffer(fig)
    for a in artists:  # a later full draw (savefig) shows them again
        a.set_animated(False)


def _png_of_buffer(fig: Figure) -> dict:
    """The canvas as it is now (no redraw), as an Output display of a PNG."""
    buf = io.BytesIO()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    Image.fromarray(rgba[..., :3]).save(buf, format="png", compress_level=1)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": data, "text/plain": "<Figure: learning-rate lab>"}}


def lab_widget(lab_runs: LRLab, *, lr: float | None = None) -> ipw.VBox:
    """The lab: VBox(lr slider, controls, status, Stack of one picture per lr)."""
    if not isinstance(lab_runs, LRLab):
        raise TypeError(f"lab_runs must be an LRLab, got {type(lab_runs).__name__}")
    lrs = lab_runs.lrs
    labels = [lab.lr_label(r) for r in lrs]
    k0 = len(lrs) - 1 if lr is None else int(np.argmin(np.abs(np.log(lrs / lr))))
    slider = ipw.SelectionSlider(options=labels, value=labels[k0],
                                 description="learning rate", continuous_update=True,
                                 style={"description_width": "initial"},
                                 layout={"width": "460px"})
    controls = {name: ipw.ToggleButtons(options=[(str(o), o) for o in opts],
                                        value=default, description=label,
                                        style={"description_width": "110px",
                                               "button_width": "90px"})
                for name, (label, opts, default) in CONTROLS.items()}
    progress = ipw.IntProgress(min=0, max=1, value=1, layout={"width": "200px"})
    status = ipw.Label("")
    pictures = [ipw.Output() for _ in lrs]
    stack = ipw.Stack(pictures, selected_index=k0)
    # the slider's index drives the Stack in the browser: no kernel round trip
    ipw.jslink((slider, "index"), (stack, "selected_index"))
    fig = Figure(figsize=(11.0, 3.9), layout="none")
    FigureCanvasAgg(fig)
    state = {"key": None}
    pngs: dict = {}  # (view key, k) -> the picture's output, so a revisit is instant

    def setting_now():
        kw = {n: c.value for n, c in controls.items() if n != "seeds"}
        return lab.Setting(**kw), controls["seeds"].value

    def render(key, order) -> None:
        setting, n_seeds = setting_now()
        todo = [k for k in order if (key, k) not in pngs]
        if todo:  # the selected learning rate first: it is on screen
            view = lab_runs.view(setting, n_seeds)
            for k, png in lab_frames(fig, lrs, view, todo, setting):
                pngs[key, k] = png
                pictures[k].outputs = (png,)
        for k in order:
            if k not in todo:
                pictures[k].outputs = (pngs[key, k],)

    def update(change=None) -> None:
        setting, n_seeds = setting_now()
        k = slider.index
        missing = lab_runs.missing(setting, lrs[k], n_seeds)
        if missing:
            progress.value, progress.bar_style = 0, "info"
            status.value = (f"training lr = {labels[k]}: 2 nets x {len(missing)} "
                            f"seeds, {setting.steps} steps ...")
            lab_runs.train(setting, float(lrs[k]), missing)
            progress.value, progress.bar_style = 1, "success"
            status.value = (f"trained in {lab_runs.last_train_s:.1f} s "
                            f"(CPU {lab_runs.last_train_cpu_s:.1f} s); cached")
        key = (setting, n_seeds, frozenset(
            (r, s) for r in range(len(lrs)) for s in range(n_seeds)
            if (setting, "BN", float(lrs[r]), s) in lab_runs.cache))
        if key != state["key"] or missing:
            state["key"] = key
            render(key, [k] + [j for j in range(len(lrs)) if j != k])

    def on_slider(change) -> None:
        setting, n_seeds = setting_now()
        if lab_runs.missing(setting, lrs[slider.index], n_seeds):
            update()

    update()
    slider.observe(on_slider, names="value")
    for c in controls.values():
        c.observe(update, names="value")
    box = ipw.VBox([slider, *controls.values(), ipw.HBox([progress, status]), stack,
                    caption("where each net's loss first ends above its start (lr*, "
                            "dashed), and how accurate it is at the budget below that")])
    box.add_class("bn-widget")  # visible keyboard focus (widgets.FOCUS_CSS)
    return box


# ---------------------------------------------------------------- the ablation

def steps_to(runs: lab.Runs, target: float = 0.85) -> np.ndarray:
    """(R,) first checkpoint step with accuracy >= target (nan if never)."""
    hit = runs.accuracy >= target
    first = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), runs.steps[first], np.nan).astype(float)


def stable_range(runs: lab.Runs, budget: int | None = None) -> tuple[float, float]:
    """(lowest, highest) lr of the grid at which no seed diverged within `budget`
    steps; (nan, nan) if none. Assumes runs over the grid x seeds."""
    lrs = np.unique(runs.lrs)
    bad = runs.diverged(budget)
    ok = np.array([not bad[runs.lrs == lr].any() for lr in lrs])
    return (float(lrs[ok].min()), float(lrs[ok].max())) if ok.any() else (np.nan,
                                                                         np.nan)


def plot_ablation(ablation: dict, target: float = 0.85):
    """Two panels: steps to `target` test accuracy against lr (mean, min-max over
    seeds; a point only where every seed got there), and the stable-lr range."""
    import matplotlib.pyplot as plt

    fig, (ax_s, ax_r) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained",
                                     gridspec_kw={"width_ratios": (1.5, 1)})
    for i, (norm, runs) in enumerate(ablation.items()):
        lrs = np.unique(runs.lrs)
        st = steps_to(runs, target)
        per_lr = np.array([st[runs.lrs == lr] for lr in lrs])  # (K, S)
        ok = ~np.isnan(per_lr).any(axis=1)
        shift = 1.0 + 0.04 * (i - 2)  # nudge the markers apart
        ax_s.errorbar(lrs[ok] * shift, per_lr[ok].mean(axis=1),
                      yerr=[per_lr[ok].mean(axis=1) - per_lr[ok].min(axis=1),
                            per_lr[ok].max(axis=1) - per_lr[ok].mean(axis=1)],
                      marker="o", markersize=4, capsize=2, color=NORM_COLORS[norm],
                      label=NORM_LABELS[norm] + ("" if ok.any() else " (never)"))
        lo, hi = stable_range(runs)
        if np.isfinite(lo):
            ax_r.plot([lo, hi], [i, i], color=NORM_COLORS[norm], linewidth=6,
                      solid_capstyle="butt")
        ax_r.scatter(lrs, np.full(len(lrs), i), s=8, color="0.5", zorder=3)
    ax_s.set(xscale="log", yscale="log", xlabel="learning rate (log scale)",
             ylabel=f"steps to {target:.0%} test accuracy",
             title=f"Speed: steps to {target:.0%} (all seeds reached it)")
    ax_s.yaxis.set_major_formatter("{x:.0f}")
    ax_s.yaxis.set_minor_formatter("{x:.0f}")
    ax_s.tick_params(axis="y", which="minor", labelsize=8)
    ax_s.legend(loc="upper right", fontsize=9)
    ax_r.set(xscale="log", yticks=range(len(ablation)),
             yticklabels=[NORM_LABELS[n] for n in ablation],
             xlabel="learning rate (log scale)",
             title="Stable range: no seed diverged (bar)")
    ax_r.invert_yaxis()
    return fig
