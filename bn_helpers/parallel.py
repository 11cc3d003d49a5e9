"""Run independent training runs side by side, one per CPU core.

Training a small net on one thread leaves the second core of a 2-core machine idle.
``run_all(fn, jobs)`` returns ``[fn(job) for job in jobs]``, computed in worker
processes forked from this one, each with one torch thread: the same arithmetic as the
loop, so the same numbers bit for bit (``tests/test_parallel.py`` checks this).

- `fn` may be any function of the notebook, a closure or a lambda: the workers are
  forked, so they inherit it; only the job's index goes to a worker and only the result
  comes back (pickled by value: trained nets and numpy arrays arrive as copies).
- A model trained in a worker is *not* trained in this process: return it (or its
  ``state_dict()``) from `fn`.
- With one core (or ``processes=1``) it is the plain loop, in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence

from tqdm.auto import tqdm

__all__ = ["run_all", "default_processes"]

# what the forked workers read (set just before the fork, cleared after)
_TASK: tuple[Callable, Sequence] | None = None


def default_processes() -> int:
    """The cores this process may use (os.sched_getaffinity), at most 2."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def _worker_init() -> None:
    import torch  # here: drawing workers need no torch import of their own

    torch.set_num_threads(1)


def _run_one(i: int) -> bytes:
    fn, jobs = _TASK
    return pickle.dumps(fn(jobs[i]), protocol=pickle.HIGHEST_PROTOCOL)


def run_all(fn: Callable, jobs, *, processes: int | None = None,
            desc: str = "runs", progress: bool = True) -> list:
    """[fn(job) for job in jobs], `processes` jobs at a time in forked workers.

    fn: called once per job; its result must be picklable. jobs: a sequence.
    processes: workers (default: default_processes()); 1 runs the plain loop here.
    desc, progress: the progress bar (one tick per finished job).
    Results come back in the order of `jobs`. An exception in fn is raised here.
    """
    global _TASK
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Sequence):
        raise TypeError(f"jobs must be a sequence (list or tuple) of jobs, "
                        f"got {type(jobs).__name__}")
    if processes is None:
        processes = default_processes()
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be a positive int, got {processes!r}")
    processes = min(processes, len(jobs)) or 1
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress)
    if processes == 1 or "fork" not in multiprocessing.get_all_start_methods():
        results = []
        for job in jobs:
            results.append(fn(job))
            bar.update()
        bar.close()
        return results
    _TASK = (fn, jobs)
    try:
        with multiprocessing.get_context("fork").Pool(
                processes, initializer=_worker_init) as pool:
            results = [None] * len(jobs)
            pending = {i: pool.apply_async(_run_one, (i,)) for i in range(len(jobs))}
            # collect in order; the bar moves as each finishes
            for i, res in pending.items():
                results[i] = pickle.loads(res.get())
                bar.update()
    finally:
        _TASK = None
        bar.close()
    return results
