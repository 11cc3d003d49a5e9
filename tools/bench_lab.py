"""Notebook 06's learning-rate lab: what a learner waits for.

Kernel side (always): one new configuration of the lab (both nets, 3 seeds, the
default 400-step budget, as one batched computation) trained and drawn, wall clock and
CPU time; the same 6 runs one at a time, for the batching gain; one picture drawn.
Browser side (when Chromium and Playwright are there, or with --browser): runs
tests/test_browser_lab.py and prints its latency lines (key press to new image).

    python tools/bench_lab.py [--browser | --no-browser]
"""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bn_helpers import lab, lab_widget, widgets
from bn_helpers.data import load_mnist

REPO = Path(__file__).resolve().parent.parent


def clocked(fn):
    # CPU: this process and the worker processes it waited for (the lab trains its
    # two nets side by side, one per core)
    wall, cpu = time.perf_counter(), lab_widget._cpu_seconds()
    out = fn()
    return out, time.perf_counter() - wall, lab_widget._cpu_seconds() - cpu


def main() -> None:
    torch.set_num_threads(1)
    x, y = load_mnist("train")
    xt, yt = load_mnist("test", n=1000, seed=0)
    runs = lab_widget.LRLab(x, y, xt, yt, lab.load_ablation())
    setting = lab.Setting(init="xavier", steps=400)  # not shipped: trains
    _, wall, cpu = clocked(lambda: runs.train(setting, 1.36, [0, 1, 2]))
    print(f"lab: one new configuration (2 nets x 3 seeds x 400 steps, batched): "
          f"{wall:.2f} s wall, {cpu:.2f} s CPU")

    def one_by_one():
        for norm in ("none", "bn"):
            for seed in (0, 1, 2):
                lab.train_runs(x, y, eval_x=xt, eval_y=yt, norm=norm, lrs=[1.36],
                               seeds=[seed], setting=setting)
    _, wall1, cpu1 = clocked(one_by_one)
    print(f"lab: the same 6 runs one at a time: {wall1:.2f} s wall, {cpu1:.2f} s CPU "
          f"(batching saves {cpu1 / cpu:.1f}x CPU)")

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 3.9))
    FigureCanvasAgg(fig)
    view = runs.view(setting, 3)
    k = lab.LR_GRID.index(1.36)
    _, wall, cpu = clocked(lambda: (lab_widget.draw_lab(fig, np.asarray(lab.LR_GRID),
                                                        view, k, setting),
                                    widgets._png_output(fig)))
    print(f"lab: one picture drawn and encoded: {1000 * wall:.0f} ms wall, "
          f"{1000 * cpu:.0f} ms CPU")
    fig = Figure(figsize=(11.0, 3.9), layout="none")
    FigureCanvasAgg(fig)
    order = [k] + [j for j in range(len(lab.LR_GRID)) if j != k]
    _, wall, cpu = clocked(lambda: list(lab_widget.lab_frames(
        fig, np.asarray(lab.LR_GRID), view, order, setting)))
    print(f"lab: all {len(order)} pictures of a setting (one full draw, then blitted): "
          f"{1000 * wall:.0f} ms wall, {1000 * cpu:.0f} ms CPU")
    browser = "--browser" in sys.argv or (
        "--no-browser" not in sys.argv and Path("/usr/lib/chromium/chromium").exists())
    if browser:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
             "tests/test_browser_lab.py"], cwd=REPO, capture_output=True, text=True)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("latency:")]
        print("\n".join(lines) or done.stdout[-2000:])
        if done.returncode:
            sys.exit(done.returncode)


if __name__ == "__main__":
    main()
