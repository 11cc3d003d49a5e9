"""bn_helpers.timing: argument checks, medians from a fake clock, interleaving, threads
restored, and peak_allocated against the size of a known array."""

import tracemalloc

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from bn_helpers.timing import peak_allocated, time_functions


class FakeClock:
    """A clock that only moves when a timed function says how long it 'took'."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def runs_for(self, durations, log, name):
        it = iter(durations)

        def fn():
            log.append(name)
            self.now += next(it)
        return fn


def test_medians_of_the_timed_calls_only():
    clock, log = FakeClock(), []
    fns = {"a": clock.runs_for([100.0, 3.0, 1.0, 2.0], log, "a"),  # first call: warm-up
           "b": clock.runs_for([100.0, 10.0, 30.0, 20.0], log, "b")}
    medians = time_functions(fns, repeats=3, warmup=1, clock=clock)
    assert medians == {"a": 2.0, "b": 20.0}
    assert list(medians) == ["a", "b"]
    assert log == ["a", "b"] * 4  # interleaved: one call of each per round


def test_even_number_of_repeats_averages_the_middle_two():
    clock, log = FakeClock(), []
    medians = time_functions({"f": clock.runs_for([1.0, 4.0, 2.0, 8.0], log, "f")},
                             repeats=4, warmup=0, clock=clock)
    assert medians == {"f": 3.0}


def test_real_clock_returns_positive_seconds_for_each_key():
    x = np.random.default_rng(0).normal(size=(200, 50))
    medians = time_functions({"sum": lambda: x.sum(0), "copy": x.copy}, repeats=3)
    assert set(medians) == {"sum", "copy"}
    assert all(isinstance(t, float) and t > 0 for t in medians.values())


def test_threads_are_limited_while_timing_then_restored():
    before = torch.get_num_threads()
    seen = {}

    def probe():
        seen["torch"] = torch.get_num_threads()
        seen["blas"] = {d["num_threads"] for d in threadpool_info()}

    time_functions({"probe": probe}, repeats=1, warmup=0, threads=1)
    assert seen["torch"] == 1
    assert seen["blas"] <= {1}
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("kwargs, error, match", [
    ({"fns": [lambda: None]}, TypeError, "fns must be a dict"),
    ({"fns": {}}, ValueError, "at least one"),
    ({"fns": {1: lambda: None}}, TypeError, "keys must be str"),
    ({"fns": {"a": 3}}, TypeError, r"fns\['a'\] must be callable"),
    ({"fns": {"a": print}, "repeats": 0}, ValueError, "repeats"),
    ({"fns": {"a": print}, "repeats": 2.5}, TypeError, "repeats"),
    ({"fns": {"a": print}, "warmup": -1}, ValueError, "warmup"),
    ({"fns": {"a": print}, "warmup": True}, TypeError, "warmup"),
    ({"fns": {"a": print}, "threads": 0}, ValueError, "threads"),
    ({"fns": {"a": print}, "clock": 1.0}, TypeError, "clock"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        time_functions(**kwargs)


def test_peak_allocated_sees_a_known_array():
    n = 1_000_000
    nbytes = np.ones(n).nbytes
    peak = peak_allocated(lambda: (np.ones(n), np.zeros(n)))  # two arrays alive at once
    assert 2 * nbytes <= peak < 2 * nbytes + 100_000
    assert peak_allocated(lambda: None) < 10_000


def test_peak_allocated_leaves_tracemalloc_as_it_was():
    assert not tracemalloc.is_tracing()
    peak_allocated(lambda: np.zeros(10))
    assert not tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        assert peak_allocated(lambda: np.zeros(100_000)) >= 800_000
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


def test_peak_allocated_needs_a_callable():
    with pytest.raises(TypeError, match="fn must be callable"):
        peak_allocated(np.zeros(3))
