"""Benchmark the numpy BN kernels against torch, side by side in one run.

For 1 thread and the default thread count, prints the median of interleaved repeats of:
the staged / closed-form ("alt") backward ratio, and numpy (forward + alt backward) /
torch (forward + backward), float32. Ratios come from the same run (machines are noisy).
"""

from __future__ import annotations

import numpy as np
import torch

from bn_helpers import batchnorm as bn
from bn_helpers.timing import time_functions

SHAPES = [(256, 1024), (4096, 1024), (64, 64, 32, 32)]
REPEATS = 15


def kernels(shape, seed: int = 0) -> dict:
    """Zero-argument functions to time for one input shape."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    dout = rng.standard_normal(shape, dtype=np.float32)
    gamma = np.ones(shape[1], np.float32)
    beta = np.zeros(shape[1], np.float32)
    spatial = len(shape) == 4
    fwd = bn.spatial_batchnorm_forward if spatial else bn.batchnorm_forward
    alt = bn.spatial_batchnorm_backward if spatial else bn.batchnorm_backward_alt
    _, cache = fwd(x, gamma, beta)
    xt = torch.from_numpy(x).requires_grad_(True)
    gt = torch.from_numpy(gamma).requires_grad_(True)
    bt = torch.from_numpy(beta).requires_grad_(True)
    dt = torch.from_numpy(dout)

    def torch_step():
        xt.grad = gt.grad = bt.grad = None
        torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True).backward(
            dt
        )

    def numpy_step():
        alt(dout, fwd(x, gamma, beta)[1])

    fns = {"numpy": numpy_step, "torch": torch_step}
    if not spatial:
        fns["staged"] = lambda: bn.batchnorm_backward(dout, cache)
        fns["alt"] = lambda: bn.batchnorm_backward_alt(dout, cache)
    return fns


def main() -> None:
    default_threads = torch.get_num_threads()
    print(f"BN kernels, float32, median of {REPEATS} interleaved repeats (ms)")
    print(
        f"{'shape':>18} {'threads':>7} {'staged':>8} {'alt':>8} {'st/alt':>7} "
        f"{'numpy':>8} {'torch':>8} {'np/torch':>8}"
    )
    for threads in sorted({1, default_threads}):
        for shape in SHAPES:
            r = time_functions(kernels(shape), REPEATS, threads=threads)
            ms = {k: f"{t * 1e3:8.2f}" for k, t in r.items()}
            dash = f"{'-':>8}"
            ratio = f"{r['staged'] / r['alt']:7.2f}" if "alt" in r else f"{'-':>7}"
            print(
                f"{str(shape):>18} {threads:>7} {ms.get('staged', dash)} "
                f"{ms.get('alt', dash)} {ratio} {ms['numpy']} {ms['torch']} "
                f"{r['numpy'] / r['torch']:8.2f}"
            )
    print("targets: st/alt >= 2; np/torch <= 1.5")


if __name__ == "__main__":
    main()
