"""Run-all budget of every notebook: wall time and peak memory of a fresh kernel each.

    python tools/bench_notebooks.py                       # every notebooks/*.ipynb
    python tools/bench_notebooks.py notebooks/02_*.ipynb  # some of them
    python tools/bench_notebooks.py --strict              # exit 1 if one is over budget
    python tools/bench_notebooks.py --figures             # also check figure legibility

Notebooks run one after another (not in parallel), so the numbers are honest. Time is
from the first cell to the end of the last, without kernel start-up. Peak memory is the
larger of (a) the kernel's own high-water mark (ru_maxrss, read by a cell appended in
memory after the last one; the files are never modified) and (b) the memory of the
kernel and its child processes together, sampled every 200 ms: the sum of their PSS
(proportional set size), which counts a page shared by several processes once in
total. (Summed RSS would count it once per process: the workers that
bn_helpers.parallel forks share the kernel's pages, MNIST included, and summed RSS
reports about twice what the machine holds.)
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from bn_helpers.plots import figure_guard_failures

REPO = Path(__file__).resolve().parent.parent
TIME_TARGET_S = 60.0
RSS_TARGET_MIB = 1.5 * 1024
PROBE = ("import resource\n"
         "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
         " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")  # KiB on Linux
REDRAW_TARGET_MS = 200.0
# Moves every slider of the widgets the notebook displayed (kept in IPython's Out) ten
# times and prints the median and the slowest redraw, in ms; the callbacks run
# synchronously in the kernel, as when a learner drags the slider.
SLIDER_PROBE = """
import statistics, time
import ipywidgets as _ipw
_times = []
def _sliders(w):
    if isinstance(w, (_ipw.IntSlider, _ipw.SelectionSlider)):
        yield w
    for c in getattr(w, "children", ()):
        yield from _sliders(c)
for _box in [o for o in Out.values() if isinstance(o, _ipw.Box)]:
    for _s in _sliders(_box):
        _opts = (list(_s.options) if isinstance(_s, _ipw.SelectionSlider)
                 else list(range(_s.min, _s.max + 1, _s.step)))
        for _k in range(10):
            _v = _opts[(3 * _k + 1) % len(_opts)]
            _v = _v if _v != _s.value else _opts[(3 * _k + 2) % len(_opts)]
            _t = time.perf_counter(); _s.value = _v
            _times.append(time.perf_counter() - _t)
print(len(_times), 1e3 * statistics.median(_times) if _times else 0.0,
      1e3 * max(_times, default=0.0))
"""


class TreePssPoller(threading.Thread):
    """Samples the summed PSS of a process and its descendants; keeps the maximum."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak_bytes = 0
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            try:
                procs = [self.proc] + self.proc.children(recursive=True)
                total = sum(p.memory_full_info().pss for p in procs if p.is_running())
            except psutil.Error:  # a child exited between listing and reading
                continue
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()


def bench(path: Path, figures: bool = False) -> dict:
    """Execute one notebook; return {name, seconds, peak_mib, error, ..., figures}.

    figures: load the figure guard (bn_helpers.plots) in the kernel and return its
    findings (text under 9 px at 900 px, overlaps, too tall); it adds a draw per
    figure to the time."""
    nb = nbformat.read(path, as_version=4)
    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))  # in memory only
    nb.cells.append(nbformat.v4.new_code_cell(SLIDER_PROBE))
    marks = {}
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            extra_arguments=["--ext=bn_helpers.plots"] if figures
                            else [],
                            resources={"metadata": {"path": str(path.parent)}})

    def on_start(**_):
        marks["poller"] = TreePssPoller(client.km.provisioner.pid)
        marks["poller"].start()

    def on_cell_execute(cell_index, **_):
        marks.setdefault("t0", time.perf_counter())
        if cell_index == n_cells:  # the probe: the notebook itself is done
            marks["t1"] = time.perf_counter()

    client.on_notebook_start = on_start
    client.on_cell_execute = on_cell_execute
    error = ""
    try:
        client.execute()
    except CellExecutionError as err:
        last_line = str(err).strip().splitlines()[-1]
        error = re.sub(r"\x1b\[[0-9;]*m", "", last_line)[:120]  # no terminal colours
    finally:
        if "poller" in marks:
            marks["poller"].stop()
    now = time.perf_counter()
    seconds = marks.get("t1", now) - marks.get("t0", now)
    peak = marks["poller"].peak_bytes / 2**20 if "poller" in marks else 0.0
    probe = nb.cells[-2].get("outputs", [])
    if probe and not error:
        self_kib, children_kib = (int(v) for v in probe[0]["text"].split())
        peak = max(peak, self_kib / 1024, children_kib / 1024)
    redraw = nb.cells[-1].get("outputs", [])
    n_moves, median_ms, max_ms = (
        (int(float(v)) if i == 0 else float(v))
        for i, v in enumerate(redraw[0]["text"].split())
    ) if redraw and not error else (0, 0.0, 0.0)
    return {"name": path.name, "seconds": seconds, "peak_mib": peak, "error": error,
            "moves": n_moves, "redraw_ms": median_ms, "redraw_max_ms": max_ms,
            "figures": figure_guard_failures(nb) if figures else []}


def verdict(row: dict) -> str:
    if row["error"]:
        return "ERROR"
    ok = row["seconds"] <= TIME_TARGET_S and row["peak_mib"] <= RSS_TARGET_MIB
    ok = ok and row["redraw_ms"] <= REDRAW_TARGET_MS
    return "PASS" if ok else "OVER"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--figures", action="store_true",
                        help="check every figure shown at notebook width (slower)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a notebook is over its time or memory budget")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((REPO / "notebooks").glob("*.ipynb"))
    print(f"Run-all budget per notebook: <= {TIME_TARGET_S:.0f} s, "
          f"<= {RSS_TARGET_MIB:.0f} MiB peak memory (kernel + children, PSS); "
          f"slider redraw <= {REDRAW_TARGET_MS:.0f} ms (median of 10 moves a slider); "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; "
          "a fresh kernel each, one at a time.\n")
    header = (f"{'notebook':<34} {'time (s)':>8} {'/budget':>7} {'mem (MiB)':>9} "
              f"{'/budget':>7} {'redraw ms (max)':>15}  verdict")
    print(header)
    print("-" * len(header))
    rows = []
    for path in paths:
        row = bench(path, figures=args.figures)
        rows.append(row)
        error = f"  {row['error']}" if row["error"] else ""
        redraw = (f"{row['redraw_ms']:.0f} ({row['redraw_max_ms']:.0f})"
                  if row["moves"] else "-")
        print(f"{row['name'][:34]:<34} {row['seconds']:>8.1f} "
              f"{row['seconds'] / TIME_TARGET_S:>7.2f} {row['peak_mib']:>9.0f} "
              f"{row['peak_mib'] / RSS_TARGET_MIB:>7.2f} {redraw:>15}  "
              f"{verdict(row)}{error}", flush=True)
        for line in row["figures"]:
            print(f"    {line}", flush=True)
    print("-" * len(header))
    total = sum(r["seconds"] for r in rows)
    worst = max((r["peak_mib"] for r in rows), default=0.0)
    print(f"{'total (time) / max (RSS)':<34} {total:>8.1f} {'':>7} {worst:>9.0f}")
    if rows:
        median = statistics.median(r["seconds"] for r in rows)
        print(f"median notebook {median:.1f} s ({median / TIME_TARGET_S:.2f} x "
              "budget); "
              "a loaded machine inflates times: compare ratios between runs")
    verdicts = [verdict(r) for r in rows]
    print(f"\n{verdicts.count('PASS')} pass, {verdicts.count('OVER')} over budget, "
          f"{verdicts.count('ERROR')} error(s)")
    failed = "ERROR" in verdicts or (args.strict and "OVER" in verdicts)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
