"""Time and measure small kernels side by side, for the comparisons in the notebooks.

``time_functions`` interleaves the candidates (one call of each per round), so a slow
moment of the machine hits all of them alike and the ratios from one run are fair.
``peak_allocated`` counts the bytes of temporaries (numpy reports its arrays to
tracemalloc): unlike a time, it is the same on every machine.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable, Mapping

import torch
from threadpoolctl import threadpool_limits

from bn_helpers import _validate as v

__all__ = ["time_functions", "peak_allocated"]


def _check_callable(name: str, fn) -> None:
    if not callable(fn):
        raise TypeError(
            f"{name} must be callable with no arguments, got {type(fn).__name__}")


def _non_negative_int(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int >= 0, got {type(n).__name__} {n!r}")
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {n}")
    return n


def time_functions(fns: Mapping[str, Callable[[], object]], repeats: int = 20, *,
                   warmup: int = 1, threads: int | None = None,
                   clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median wall-clock seconds of each zero-argument function, measured interleaved.

    fns: name -> function to call with no arguments (e.g. a lambda closing over arrays).
    repeats: timed calls of each function; warmup: untimed calls of each first.
    threads: if given, limit numpy's BLAS and torch to this many threads while timing
        (the previous settings are restored); None leaves them as they are.
    clock: seconds as a float (injectable for tests).
    Returns {name: median seconds}, in the order of `fns`.
    """
    if not isinstance(fns, Mapping):
        raise TypeError(
            f"fns must be a dict of name -> function, got {type(fns).__name__}")
    if not fns:
        raise ValueError("fns must hold at least one function, got an empty dict")
    for name, fn in fns.items():
        if not isinstance(name, str):
            raise TypeError(
                f"fns keys must be str names, got {type(name).__name__} {name!r}")
        _check_callable(f"fns[{name!r}]", fn)
    repeats = v.positive_int("repeats", repeats)
    warmup = _non_negative_int("warmup", warmup)
    if threads is not None:
        threads = v.positive_int("threads", threads)
    _check_callable("clock", clock)

    times: dict[str, list[float]] = {name: [] for name in fns}
    torch_threads = torch.get_num_threads()
    with threadpool_limits(threads):  # None: no limit
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            for round_ in range(warmup + repeats):
                for name, fn in fns.items():
                    t0 = clock()
                    fn()
                    elapsed = clock() - t0
                    if round_ >= warmup:
                        times[name].append(elapsed)
        finally:
            torch.set_num_threads(torch_threads)
    return {name: statistics.median(ts) for name, ts in times.items()}


def peak_allocated(fn: Callable[[], object]) -> int:
    """Peak bytes allocated while fn() runs, above what was allocated before the call.

    Counts numpy arrays (and Python objects) through tracemalloc, including fn's return
    value; memory that torch allocates in C++ is not seen.
    """
    _check_callable("fn", fn)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return peak - before
