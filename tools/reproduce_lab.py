"""Train the mechanism ablation of notebook 06 and write data/lab/ablation.npz.

Five normalisations ("none", "center", "scale", "bn", "wn"; see bn_helpers/lab.py) of
the paper's MNIST net (784-100-100-100-10, sigmoid, N(0, 0.1^2), m = 60), at every
learning rate of lab.LR_GRID and for every seed of lab.SEEDS, 600 steps each, test
accuracy on 1000 test images every 25 steps. The "none" and "bn" runs are also the
lab's default setting. Prints the sha256 it writes into data/lab/SHA256SUMS.

    python tools/reproduce_lab.py
"""

import platform
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from bn_helpers import lab
from bn_helpers.data import load_mnist


def main() -> None:
    x, y = load_mnist("train")
    xt, yt = load_mnist("test", n=1000, seed=0)
    lrs = np.tile(lab.LR_GRID, len(lab.SEEDS))
    seeds = np.repeat(lab.SEEDS, len(lab.LR_GRID))
    runs, started = {}, time.process_time()
    for norm in tqdm(lab.NORMS, desc="norms"):
        runs[norm] = lab.train_runs(x, y, eval_x=xt, eval_y=yt, norm=norm, lrs=lrs,
                                    seeds=seeds, setting=lab.ABLATION_SETTING,
                                    record_every=25)
        runs[norm].meta.update(torch=torch.__version__, numpy=np.__version__,
                               machine=platform.machine(), n_eval=len(xt))
    digest = lab.save_ablation(runs)
    print(f"CPU time {time.process_time() - started:.0f} s; wrote "
          f"{lab.DEFAULT_PATH} sha256 {digest}")


if __name__ == "__main__":
    main()
