"""Train the paper's MNIST MLP with and without BN at a grid of learning rates.

Ioffe & Szegedy (2015), Sec. 3.3: BN makes each hidden layer invariant to the scale of
its weights, which lets the network train at learning rates that break the plain net.
``lr_sweep`` runs ``training.train`` once per (learning rate, net) from the same
initial weights and the same batch order, and keeps the loss and accuracy curves.

>>> sweep = lr_sweep(x, y, eval_x=xt, eval_y=yt, lrs=LR_GRID, steps=400, seed=0)
>>> sweep.final_accuracy("BN").shape  # one number per learning rate
(8,)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from bn_helpers import _validate as v
from bn_helpers import lab, models, training

__all__ = ["LR_GRID", "NETS", "LRSweep", "lr_label", "lr_sweep"]

# The learning-rate lab's grid (bn_helpers.lab): 10 rates, a factor 3 apart, 0.05 ... 1000
LR_GRID = lab.LR_GRID
NETS = {"no BN": False, "BN": True}  # label -> batchnorm flag of models.build_mlp
lr_label = lab.lr_label


@dataclass(frozen=True, eq=False)
class LRSweep:
    """Curves of K runs per net. K learning rates, S steps, C checkpoints.

    lrs:            (K,) learning rates, increasing
    steps:          (C,) training step of each checkpoint (0 = before training)
    loss:           {net label: (K, S)} training loss of each mini-batch
    test_accuracy:  {net label: (K, C)} accuracy on the eval set (BN in eval mode)
    config:         seed, steps, batch_size, init_std, n_eval
    """

    lrs: np.ndarray
    steps: np.ndarray
    loss: dict
    test_accuracy: dict
    config: dict = field(default_factory=dict)

    def final_accuracy(self, net: str) -> np.ndarray:
        """(K,) accuracy at the last checkpoint of each run of `net`."""
        if net not in self.test_accuracy:
            raise ValueError(f"net must be one of {list(self.test_accuracy)}, "
                             f"got {net!r}")
        return self.test_accuracy[net][:, -1]


def _check_lrs(lrs) -> np.ndarray:
    if not isinstance(lrs, (tuple, list, np.ndarray)) or len(lrs) < 2:
        raise TypeError(f"lrs must be a sequence of at least 2 learning rates, "
                        f"got {lrs!r}")
    out = np.array([v.positive_float(f"lrs[{i}]", lr) for i, lr in enumerate(lrs)])
    if np.any(np.diff(out) <= 0):
        raise ValueError(f"lrs must be strictly increasing, got {list(out)}")
    return out


def lr_sweep(train_x, train_y, *, eval_x, eval_y, lrs=LR_GRID, steps: int = 400,
             seed: int, record_every: int = 50, batch_size: int = 60,
             init_std: float = 0.1, progress: bool = True) -> LRSweep:
    """Train both nets of NETS at every learning rate in `lrs`; return the curves.

    train_x (N, 784) float, train_y (N,) int; eval_x, eval_y: the set whose accuracy
    is recorded every `record_every` steps. Every run starts from
    models.build_mlp(init_std=init_std, seed=seed) and sees the same batches (seed).
    """
    lrs = _check_lrs(lrs)
    seed = models.check_seed(seed)
    runs = {label: [] for label in NETS}
    bar = tqdm(total=len(NETS) * len(lrs), desc="runs", disable=not progress)
    for label, batchnorm in NETS.items():
        for lr in lrs:
            bar.set_postfix_str(f"{label}, lr={lr_label(lr)}")
            net = models.build_mlp(batchnorm=batchnorm, init_std=init_std, seed=seed)
            # the activation statistics are not needed here: a 2-image probe is cheap
            runs[label].append(training.train(
                net, train_x, train_y, eval_x=eval_x, eval_y=eval_y,
                probe_x=eval_x[:2], lr=float(lr), steps=steps, seed=seed,
                batch_size=batch_size, record_every=record_every, bins=1,
                progress=False))
            bar.update()
    bar.close()
    loss = {label: np.stack([h.loss for h in hs]) for label, hs in runs.items()}
    accuracy = {label: np.stack([h.test_accuracy for h in hs])
                for label, hs in runs.items()}
    config = {"seed": seed, "steps": steps, "batch_size": batch_size,
              "init_std": init_std, "n_eval": len(eval_x)}
    return LRSweep(lrs=lrs, steps=runs["BN"][0].steps, loss=loss,
                   test_accuracy=accuracy, config=config)
