"""Benchmark the numpy BN kernels against torch, side by side in one run.

Prints, for 1 thread and the default thread count, the median of repeats of:
staged/alt backward ratio, and numpy (forward + alt backward) / torch (forward + backward).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from bn_helpers import batchnorm as bn

SHAPES = [(256, 1024), (4096, 1024), (64, 64, 32, 32)]


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_shape(shape, seed: int = 0, repeats: int = 15) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    dout = rng.standard_normal(shape, dtype=np.float32)
    c = shape[1]
    gamma = np.ones(c, np.float32)
    beta = np.zeros(c, np.float32)
    spatial = len(shape) == 4
    fwd = bn.spatial_batchnorm_forward if spatial else bn.batchnorm_forward
    alt = bn.spatial_batchnorm_backward if spatial else bn.batchnorm_backward_alt
    _, cache = fwd(x, gamma, beta)

    xt = torch.from_numpy(x).requires_grad_(True)
    gt = torch.from_numpy(gamma).requires_grad_(True)
    bt = torch.from_numpy(beta).requires_grad_(True)
    dt = torch.from_numpy(dout)

    def torch_step():
        out = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True)
        xt.grad = gt.grad = bt.grad = None
        out.backward(dt)

    def numpy_step():
        _, cc = fwd(x, gamma, beta)
        alt(dout, cc)

    row = {
        "numpy": _median_time(numpy_step, repeats),
        "torch": _median_time(torch_step, repeats),
    }
    if not spatial:
        row["staged"] = _median_time(lambda: bn.batchnorm_backward(dout, cache), repeats)
        row["alt"] = _median_time(lambda: bn.batchnorm_backward_alt(dout, cache), repeats)
    return row


def main() -> None:
    default_threads = torch.get_num_threads()
    print("BN kernels, float32, median of 15 (ms); ratios from the same run")
    print(f"{'shape':>18} {'threads':>7} {'staged':>8} {'alt':>8} {'st/alt':>7} "
          f"{'numpy':>8} {'torch':>8} {'np/torch':>8}")
    for threads in (1, default_threads):
        torch.set_num_threads(threads)
        with threadpool_limits(threads):
            for shape in SHAPES:
                r = bench_shape(shape)
                st = f"{r['staged'] * 1e3:8.2f}" if "staged" in r else f"{'-':>8}"
                al = f"{r['alt'] * 1e3:8.2f}" if "alt" in r else f"{'-':>8}"
                ratio = f"{r['staged'] / r['alt']:7.2f}" if "alt" in r else f"{'-':>7}"
                print(f"{str(shape):>18} {threads:>7} {st} {al} {ratio} "
                      f"{r['numpy'] * 1e3:8.2f} {r['torch'] * 1e3:8.2f} "
                      f"{r['numpy'] / r['torch']:8.2f}")
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
