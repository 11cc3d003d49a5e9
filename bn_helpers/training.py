"""Train an MLP with plain mini-batch SGD and record what its hidden nonlinearities see.

The update is the one in the course notes (Ioffe & Szegedy 2015, Sec. 1):
``theta <- theta - lr/m * sum_i d loss(x_i, theta)/d theta``; the loss is the mean
cross-entropy over a mini-batch of m examples, so ``theta -= lr * theta.grad``.

Every ``record_every`` steps (and at step 0) we feed a fixed probe set through the net
and record, for each hidden layer, the inputs of its nonlinearity ("sigmoid inputs"):
the {15, 50, 85}th percentiles, mean and std of every unit over the probe set, and one
histogram pooled over units and probe inputs. That is the data behind Fig. 1(b, c).

Example (x, y: training images and labels; xt, yt: test images and labels)::

    hist = train(net, x, y, eval_x=xt, eval_y=yt, probe_x=xt[:1000], lr=0.5,
                 steps=2000, seed=0)
    hist.percentiles[0].shape  # layer 1: (21 checkpoints, 3 percentiles, 100 units)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import trange

from bn_helpers import _validate as v
from bn_helpers.models import activation_modules, check_seed

__all__ = ["PERCENTILES", "History", "activation_inputs", "sgd_steps", "train",
           "drift_per_interval", "activation_drift", "drift_table"]

PERCENTILES = (15, 50, 85)  # as in Fig. 1(b, c)


@dataclass(frozen=True, eq=False)
class History:
    """What `train` recorded. C checkpoints, L hidden layers, H_l units in layer l.

    steps:          (C,) training step of each checkpoint; 0 is before the first update
    loss:           (S,) training loss of the mini-batch at each of the S steps
    test_accuracy:  (C,) accuracy on the eval set (BN in inference mode, running stats)
    percentiles:    L arrays (C, 3, H_l): PERCENTILES of each unit's input over the
                    probe set
    mean, std:      L arrays (C, H_l): mean and std (divide by n) of each unit's input
    hist_counts:    (C, L, B) histogram of the inputs of layer l, pooled over units and
                    probe examples; values beyond hist_edges count in the end bins
    hist_edges:     (B + 1,) bin edges shared by all checkpoints and layers
    config:         the arguments of the run (seed, lr, steps, batch_size, ...)
    """

    steps: np.ndarray
    loss: np.ndarray
    test_accuracy: np.ndarray
    percentiles: tuple[np.ndarray, ...]
    mean: tuple[np.ndarray, ...]
    std: tuple[np.ndarray, ...]
    hist_counts: np.ndarray
    hist_edges: np.ndarray
    config: dict = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return len(self.mean)


def _as_tensor(name: str, a, *, ndim: int, floating: bool) -> torch.Tensor:
    """numpy array or tensor -> tensor (float32 or int64), sharing memory if it can."""
    if isinstance(a, np.ndarray):
        a = torch.from_numpy(a)
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"{name} must be a numpy.ndarray or torch.Tensor, "
                        f"got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(a.shape)}")
    if floating:
        if not a.is_floating_point():
            raise TypeError(f"{name} must hold floats (e.g. pixels in [0, 1]), "
                            f"got {a.dtype}")
        return a.float()
    if a.is_floating_point() or a.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class labels, got {a.dtype}")
    return a.long()


def _check_input_width(model: nn.Module, name: str, x: torch.Tensor) -> None:
    first = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
    if first is not None and x.shape[1] != first.in_features:
        raise ValueError(f"{name} must have {first.in_features} features per row (the "
                         f"model's input width), got shape {tuple(x.shape)}")


@contextlib.contextmanager
def _torch_threads(n: int):
    """Use n intra-op threads inside the block (small matmuls run fastest on one)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@torch.no_grad()
def activation_inputs(model: nn.Module, x) -> list[torch.Tensor]:
    """Inputs of each hidden nonlinearity when `model` runs on x, via forward hooks.

    x: (n, D_in) with n >= 2. Returns L float32 tensors (n, H_l), in forward order.
    BN layers normalise with the statistics of x itself (training-mode arithmetic: the
    distribution the nonlinearity sees for the current parameters); the model's mode,
    parameters and running statistics are left as they were.
    """
    mods = activation_modules(model)
    x = _as_tensor("x", x, ndim=2, floating=True)
    _check_input_width(model, "x", x)
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 examples (BN needs a batch), "
                         f"got {len(x)}")
    captured: list[torch.Tensor] = []

    def hook(_module, inputs, _output):
        captured.append(inputs[0].clone())

    hooks = [m.register_forward_hook(hook) for m in mods]
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    was_training = model.training
    try:
        model.train()
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
        for k, b in model.named_buffers():
            b.copy_(buffers[k])
    return captured


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    was_training = model.training
    model.eval()
    try:
        return float((model(x).argmax(dim=1) == y).double().mean())
    finally:
        model.train(was_training)


class _Recorder:
    """Fills the History arrays checkpoint by checkpoint."""

    def __init__(self, model, probe_x, n_checkpoints, hist_range, bins):
        self.model, self.probe_x = model, probe_x
        self.lo, self.hi = hist_range
        self.bins = bins
        widths = [a.shape[1] for a in activation_inputs(model, probe_x[:2])]
        self.q = torch.tensor(PERCENTILES, dtype=torch.float64) / 100
        self.percentiles = [np.empty((n_checkpoints, len(self.q), h)) for h in widths]
        self.mean = [np.empty((n_checkpoints, h)) for h in widths]
        self.std = [np.empty((n_checkpoints, h)) for h in widths]
        self.hist = np.empty((n_checkpoints, len(widths), bins), dtype=np.int64)

    def record(self, c: int) -> None:
        for i, a in enumerate(activation_inputs(self.model, self.probe_x)):
            a64 = a.double()
            self.percentiles[i][c] = torch.quantile(a64, self.q, dim=0).numpy()
            self.mean[i][c] = a64.mean(dim=0).numpy()
            self.std[i][c] = a64.std(dim=0, correction=0).numpy()
            clipped = a.clamp(self.lo, self.hi)  # outliers land in the end bins
            self.hist[c, i] = torch.histc(clipped, self.bins, self.lo, self.hi).numpy()


def _check_range(hist_range) -> tuple[float, float]:
    ok = (isinstance(hist_range, (tuple, list)) and len(hist_range) == 2
          and all(isinstance(b, Real) and not isinstance(b, bool) for b in hist_range))
    if not ok or not float(hist_range[0]) < float(hist_range[1]):
        raise ValueError(f"hist_range must be a pair (low, high) with low < high, "
                         f"got {hist_range!r}")
    return float(hist_range[0]), float(hist_range[1])


def sgd_steps(model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, *,
              lr: float, steps: int, seed: int, batch_size: int = 60):
    """Plain mini-batch SGD on mean cross-entropy, one step per iteration.

    Yields (step, loss) for step = 1..steps, *after* the update of that step, while
    each parameter's .grad still holds the gradient that update used (it is cleared
    when the next step starts, and after the last): a caller can record weights,
    gradients and the activations of this step's forward pass before asking for the
    next step.
    Batches are consecutive slices of a permutation drawn each epoch from a
    torch.Generator seeded with `seed`. train_x (N, D_in) float32 and train_y (N,)
    int64 tensors, already checked (as `train` does).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(seed)
    per_epoch = len(train_x) // batch_size
    model.train()
    for step in range(1, steps + 1):
        slot = (step - 1) % per_epoch
        if slot == 0:
            order = torch.randperm(len(train_x), generator=gen)
        idx = order[slot * batch_size:(slot + 1) * batch_size]
        for p in params:
            p.grad = None
        loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
        loss.backward()
        with torch.no_grad():
            for p in params:  # theta <- theta - lr * (1/m) sum_i d loss_i / d theta
                p.add_(p.grad, alpha=-lr)
        yield step, loss.detach()
    for p in params:  # leave no gradient behind, as after an optimizer's zero_grad
        p.grad = None


def train(model: nn.Module, train_x, train_y, *, eval_x, eval_y, probe_x, lr: float,
          steps: int, seed: int, batch_size: int = 60, record_every: int = 100,
          hist_range=(-10.0, 10.0), bins: int = 100, progress: bool = True,
          num_threads: int = 1, desc: str = "training") -> History:
    """Plain mini-batch SGD on mean cross-entropy; returns the recorded History.

    model: e.g. models.build_mlp(...); trained in place.
    train_x (N, D_in) float, train_y (N,) int: the training set, held in memory. Batches
        are consecutive slices of a permutation drawn each epoch from a torch.Generator
        seeded with `seed`, so the same seed (and model) gives the same History.
    eval_x, eval_y: test accuracy at each checkpoint. probe_x (n, D_in): the fixed
        inputs whose sigmoid-input statistics are recorded (n ~ 1000 keeps it cheap).
    steps: a multiple of record_every; checkpoints at 0, record_every, ..., steps.
    hist_range, bins: the histogram's range and number of equal-width bins.
    num_threads: torch threads during training (restored afterwards).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    train_x = _as_tensor("train_x", train_x, ndim=2, floating=True)
    train_y = _as_tensor("train_y", train_y, ndim=1, floating=False)
    eval_x = _as_tensor("eval_x", eval_x, ndim=2, floating=True)
    eval_y = _as_tensor("eval_y", eval_y, ndim=1, floating=False)
    probe_x = _as_tensor("probe_x", probe_x, ndim=2, floating=True)
    for name, x, y in (("train", train_x, train_y), ("eval", eval_x, eval_y)):
        if len(x) != len(y):
            raise ValueError(f"{name}_x and {name}_y must have the same length, "
                             f"got {len(x)} and {len(y)}")
        _check_input_width(model, f"{name}_x", x)
    _check_input_width(model, "probe_x", probe_x)
    if len(probe_x) < 2:
        raise ValueError(f"probe_x must hold at least 2 examples, got {len(probe_x)}")
    lr = v.positive_float("lr", lr)
    steps = v.positive_int("steps", steps)
    batch_size = v.positive_int("batch_size", batch_size)
    record_every = v.positive_int("record_every", record_every)
    bins = v.positive_int("bins", bins)
    num_threads = v.positive_int("num_threads", num_threads)
    hist_range = _check_range(hist_range)
    seed = check_seed(seed)
    if steps % record_every:
        raise ValueError(f"steps must be a multiple of record_every={record_every}, "
                         f"got steps={steps}")
    if not 2 <= batch_size <= len(train_x):
        raise ValueError(f"batch_size must be in [2, {len(train_x)}] (BN needs 2 "
                         f"examples; at most the training set), got {batch_size}")

    n_checkpoints = steps // record_every + 1
    with _torch_threads(num_threads):
        rec = _Recorder(model, probe_x, n_checkpoints, hist_range, bins)
        accuracy = np.empty(n_checkpoints)
        losses = torch.empty(steps)
        model.train()
        rec.record(0)
        accuracy[0] = _accuracy(model, eval_x, eval_y)
        bar = trange(1, steps + 1, desc=desc, disable=not progress, mininterval=0.5)
        batches = sgd_steps(model, train_x, train_y, lr=lr, steps=steps, seed=seed,
                            batch_size=batch_size)
        for _, (step, loss) in zip(bar, batches, strict=True):
            losses[step - 1] = loss
            if step % record_every == 0:
                c = step // record_every
                rec.record(c)
                accuracy[c] = _accuracy(model, eval_x, eval_y)
                bar.set_postfix(loss=f"{float(loss):.3f}",
                                acc=f"{accuracy[c]:.3f}", refresh=False)

    config = dict(seed=seed, lr=lr, steps=steps, batch_size=batch_size,
                  record_every=record_every, n_probe=len(probe_x),
                  batchnorm=any(isinstance(m, nn.BatchNorm1d) for m in model.modules()))
    return History(steps=np.arange(n_checkpoints) * record_every, loss=losses.numpy(),
                   test_accuracy=accuracy, percentiles=tuple(rec.percentiles),
                   mean=tuple(rec.mean), std=tuple(rec.std), hist_counts=rec.hist,
                   hist_edges=np.linspace(*hist_range, bins + 1), config=config)


def _check_history(name: str, h) -> History:
    if not isinstance(h, History):
        raise TypeError(f"{name} must be a training.History (returned by train), "
                        f"got {type(h).__name__}")
    return h


def drift_per_interval(history: History) -> tuple[np.ndarray, np.ndarray]:
    """How far each layer's input distribution moves from one checkpoint to the next.

    For layer l with per-unit means mu[c, k] and stds s[c, k] at checkpoint c:
        mean_drift[l, c] = average over units k of |mu[c+1, k] - mu[c, k]|
        std_drift[l, c]  = average over units k of |s[c+1, k] - s[c, k]|
    Returns (mean_drift, std_drift), each (L, C - 1), in units of the sigmoid input.
    """
    h = _check_history("history", history)
    if len(h.steps) < 2:
        raise ValueError("history must have at least 2 checkpoints to measure drift")
    mean_drift = np.stack([np.abs(np.diff(mu, axis=0)).mean(axis=1) for mu in h.mean])
    std_drift = np.stack([np.abs(np.diff(s, axis=0)).mean(axis=1) for s in h.std])
    return mean_drift, std_drift


def activation_drift(history: History) -> tuple[np.ndarray, np.ndarray]:
    """drift_per_interval averaged over intervals: (mean_drift, std_drift), each (L,)"""
    mean_drift, std_drift = drift_per_interval(history)
    return mean_drift.mean(axis=1), std_drift.mean(axis=1)


def drift_table(histories: dict) -> str:
    """A text table of activation_drift per layer for each named History."""
    if not isinstance(histories, dict) or not histories:
        raise TypeError("histories must be a non-empty dict {label: History}, "
                        f"got {type(histories).__name__}")
    lines = [f"{'net':<10}{'layer':>6}{'mean drift':>13}{'std drift':>12}"]
    for label, h in histories.items():
        drifts = zip(*activation_drift(_check_history(label, h)), strict=True)
        for layer, (dm, ds) in enumerate(drifts, start=1):
            lines.append(f"{label:<10}{layer:>6}{dm:>13.4f}{ds:>12.4f}")
    return "\n".join(lines)
