"""Many small MLPs trained at once: the engine behind notebook 06's learning-rate lab.

R runs (learning rates x seeds) of the same architecture are stacked along a leading
dimension and trained as one batched computation: weights (R, n_in, n_out), a
mini-batch (R, m, n_in), ``torch.bmm`` for every layer, one backward pass for the sum
of the R losses (the runs share no parameter, so each gets its own gradient) and one
SGD step ``w_r -= lr_r * grad_r``. That is about 3x cheaper per run than R separate
``training.train`` calls on a 2-core CPU (tools/bench_lab.py measures it).

Per hidden layer the normalisation ``norm`` is one of

- ``"none"``:   z = W u + b
- ``"center"``: z = gamma * (W u - mu_B) + beta                 (centring only)
- ``"scale"``:  z = gamma * W u / sqrt(sigma_B^2 + eps) + beta  (scaling only)
- ``"bn"``:     z = gamma * (W u - mu_B) / sqrt(sigma_B^2 + eps) + beta   (Alg. 1)
- ``"wn"``:     z = g * (v / ||v||) u + b   (weight normalisation, Salimans & Kingma)

"scale", "bn" and "wn" make a layer invariant to the scale of its weights; "center"
does not. With ``placement="after"`` the batch statistics are taken after the
nonlinearity (Linear -> activation -> norm) instead of before it (the paper's order).
Evaluation uses running statistics (momentum 0.1, unbiased variance, torch's
convention), like ``model.eval()``.

>>> runs = train_runs(x, y, eval_x=xt, eval_y=yt, norm="bn", lrs=[0.5, 5.0],
...                   seeds=[0, 0], setting=Setting(steps=200))
>>> runs.loss.shape, runs.accuracy.shape    # (R, steps), (R, checkpoints)
((2, 200), (2, 2))
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bn_helpers import _validate as v
from bn_helpers.data import DataIntegrityError, write_stable_npz
from bn_helpers.training import _torch_threads

__all__ = ["NORMS", "INITS", "ACTIVATIONS", "PLACEMENTS", "Setting", "Runs",
           "train_runs", "diverged", "lr_star", "lr_label", "LR_GRID", "SEEDS",
           "ABLATION_SETTING",
           "save_ablation", "load_ablation"]

NORMS = ("none", "center", "scale", "bn", "wn")
INITS = ("normal(0.1)", "xavier")
ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu}
PLACEMENTS = ("before", "after")
EPS = 1e-5
MOMENTUM = 0.1
_STATS = ("center", "scale", "bn")  # the norms that keep running statistics


@dataclass(frozen=True)
class Setting:
    """Everything about a run except its normalisation, learning rate and seed.

    init: "normal(0.1)" (weights ~ N(0, 0.1^2), the course's default) or "xavier"
        (N(0, 2 / (n_in + n_out)), Glorot & Bengio 2010).
    batch_size: m. activation: "sigmoid" or "relu". depth: hidden layers of 100
    units. placement: normalisation "before" or "after" the activation.
    steps: the step budget. width: units per hidden layer.
    """

    init: str = "normal(0.1)"
    batch_size: int = 60
    activation: str = "sigmoid"
    depth: int = 3
    placement: str = "before"
    steps: int = 500
    width: int = 100

    def __post_init__(self):
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, "
                             f"got {self.placement!r}")
        for name in ("batch_size", "depth", "steps", "width"):
            v.positive_int(name, getattr(self, name))
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (batch statistics), "
                             f"got {self.batch_size}")

    @property
    def sizes(self) -> tuple[int, ...]:
        return (784,) + (self.width,) * self.depth + (10,)


@dataclass(frozen=True, eq=False)
class Runs:
    """What train_runs recorded for R runs. S steps, C checkpoints.

    lrs, seeds: (R,) the learning rate and seed of each run
    loss:       (R, S) training loss of each mini-batch (nan once a run blew up)
    steps:      (C,) the checkpoints at which the accuracy was measured (last = S)
    accuracy:   (R, C) accuracy on the eval set, running statistics (eval mode)
    """

    norm: str
    setting: Setting
    lrs: np.ndarray
    seeds: np.ndarray
    loss: np.ndarray
    steps: np.ndarray
    accuracy: np.ndarray
    meta: dict = field(default_factory=dict)

    def diverged(self, budget: int | None = None) -> np.ndarray:
        """(R,) bool: diverged within the first `budget` steps (see `diverged`)."""
        return diverged(self.loss[:, :budget or self.loss.shape[1]])


def diverged(loss) -> np.ndarray:
    """(R,) bool for losses (R, S): the run blew up (a non-finite loss) or its mean
    loss over the last tenth of the steps is above its loss at step 1 (the start)."""
    loss = np.asarray(loss, dtype=np.float64)
    if loss.ndim != 2 or loss.shape[1] < 10:
        raise ValueError(f"loss must be (runs, steps) with steps >= 10, "
                         f"got shape {loss.shape}")
    tail = loss[:, -max(1, loss.shape[1] // 10):]
    with np.errstate(invalid="ignore"):
        blew_up = ~np.isfinite(loss).all(axis=1)
        return blew_up | (tail.mean(axis=1) > loss[:, 0])


def lr_star(lrs, diverged_grid) -> np.ndarray:
    """Divergence boundary per seed: lrs (K,) increasing, diverged_grid (N, K) bool.

    lr* is the geometric mean of the largest rate below the first divergence and the
    first diverging rate; inf when no rate of the grid diverged, nan when the smallest
    already did (then lr* < lrs[0]). Returns (N,).
    """
    lrs = np.asarray(lrs, dtype=np.float64)
    grid = np.atleast_2d(np.asarray(diverged_grid, dtype=bool))
    if grid.shape[1] != len(lrs):
        raise ValueError(f"diverged_grid must have {len(lrs)} columns (one per lr), "
                         f"got shape {grid.shape}")
    out = np.full(len(grid), np.inf)
    for i, row in enumerate(grid):
        if row.any():
            k = int(np.argmax(row))
            out[i] = np.nan if k == 0 else math.sqrt(lrs[k - 1] * lrs[k])
    return out


# ---------------------------------------------------------------- the batched net

def _layer_size(norm: str, placement: str) -> int:
    """Parameters per hidden layer: w, b ("none"); w, g, b ("wn" and the batch norms
    before the activation); w, b_pre, gamma, beta (a batch norm after it)."""
    if norm == "none":
        return 2
    return 4 if placement == "after" and norm in _STATS else 3


def _init_params(setting: Setting, norm: str, seeds: np.ndarray) -> list[torch.Tensor]:
    """Parameters of R nets, each drawn from its own seed (same seed, same weights)."""
    sizes, n_hidden = setting.sizes, setting.depth
    per_run = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        params = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            std = (0.1 if setting.init == "normal(0.1)"
                   else math.sqrt(2.0 / (n_in + n_out)))
            # drawn as torch's (n_out, n_in), used as (n_in, n_out) for u @ W
            params.append(torch.randn(n_out, n_in, generator=gen).T * std)
            extra = _layer_size(norm, setting.placement) - 2 if i < n_hidden else 0
            params += [torch.zeros(n_out)] * (extra - 1)  # bias before the activation
            if extra:
                params.append(torch.ones(n_out))  # gamma (g for "wn")
            params.append(torch.zeros(n_out))  # beta, or the bias
        per_run.append(params)
    return [torch.stack(group).contiguous().requires_grad_(True)
            for group in zip(*per_run, strict=True)]


def _hidden(h, params, norm, act, placement, train, running, layer):
    """One hidden layer for all runs: h (R, m, n_in) -> (R, m, n_out)."""
    w, b = params[0], params[-1]
    if norm == "none":
        return act(torch.bmm(h, w) + b[:, None])
    gamma = params[-2]
    if norm == "wn":  # normalise each unit's weight vector (a column here)
        return act(torch.bmm(h, w / w.norm(dim=1, keepdim=True)) * gamma[:, None]
                   + b[:, None])
    z = torch.bmm(h, w)
    if placement == "after":
        z = act(z + params[1][:, None])
    if train:
        mu, var = z.mean(dim=1), z.var(dim=1, unbiased=False)
        with torch.no_grad():
            m = z.shape[1]
            rm, rv = running[layer]
            rm.mul_(1 - MOMENTUM).add_(MOMENTUM * mu)
            rv.mul_(1 - MOMENTUM).add_(MOMENTUM * var * m / (m - 1))
    else:
        mu, var = running[layer]
    if norm == "center":
        z = z - mu[:, None]
    elif norm == "scale":
        z = z / torch.sqrt(var[:, None] + EPS)
    else:
        z = (z - mu[:, None]) / torch.sqrt(var[:, None] + EPS)
    z = z * gamma[:, None] + b[:, None]
    return z if placement == "after" else act(z)


def _forward(x, params, setting, norm, train, running):
    """Logits (R, m, 10) of R nets; x is (R, m, 784) or (m, 784) shared by all."""
    act = ACTIVATIONS[setting.activation]
    h = x
    k = _layer_size(norm, setting.placement)
    for layer in range(setting.depth):
        group = params[k * layer: k * (layer + 1)]
        if h.ndim == 2:  # shared input (evaluation): the same images for every run
            h = h.expand(group[0].shape[0], *h.shape)
        h = _hidden(h, group, norm, act, setting.placement, train, running, layer)
    w, b = params[-2:]
    return torch.bmm(h, w) + b[:, None]


def _batch_order(seed: int, n: int, steps: int, m: int) -> np.ndarray:
    """(steps, m) example indices: epochs of a permutation drawn from `seed`."""
    rng = np.random.default_rng(seed)
    need = steps * m
    order = np.concatenate([rng.permutation(n) for _ in range(-(-need // n))])
    return order[:need].reshape(steps, m)


def train_runs(train_x, train_y, *, eval_x, eval_y, norm: str, lrs, seeds,
               setting: Setting, record_every: int | None = None,
               threads: int = 1) -> Runs:
    """Train R = len(lrs) nets at once with plain SGD; run r uses lrs[r], seeds[r].

    train_x (N, 784) float32, train_y (N,) int64 (numpy or torch); eval_x, eval_y the
    set whose accuracy is measured every `record_every` steps (default: only at the
    end). A run's seed fixes its initial weights and its batch order, so runs with the
    same seed start from the same weights and see the same batches.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if not isinstance(setting, Setting):
        raise TypeError(f"setting must be a lab.Setting, got {type(setting).__name__}")
    lrs = np.array([v.positive_float(f"lrs[{i}]", r) for i, r in enumerate(lrs)])
    seeds = np.array([v.seed(f"seeds[{i}]", s) for i, s in enumerate(seeds)])
    if len(lrs) == 0 or len(lrs) != len(seeds):
        raise ValueError(f"lrs and seeds must be non-empty and of equal length, "
                         f"got {len(lrs)} and {len(seeds)}")
    steps = setting.steps
    every = steps if record_every is None else v.positive_int("record_every",
                                                              record_every)
    checkpoints = np.unique(np.r_[np.arange(every, steps + 1, every), steps])
    x = torch.as_tensor(train_x, dtype=torch.float32)
    y = torch.as_tensor(train_y, dtype=torch.int64)
    ex = torch.as_tensor(eval_x, dtype=torch.float32)
    ey = torch.as_tensor(eval_y, dtype=torch.int64)
    m, n_runs = setting.batch_size, len(lrs)
    # batch order per distinct seed, as (steps, R, m) indices
    orders = {int(s): _batch_order(int(s), len(x), steps, m) for s in set(seeds)}
    index = torch.from_numpy(np.stack([orders[int(s)] for s in seeds], axis=1))
    with torch.no_grad():
        params = _init_params(setting, norm, seeds)
    running = [(torch.zeros(n_runs, setting.width), torch.ones(n_runs, setting.width))
               for _ in range(setting.depth)] if norm in _STATS else None
    lr_t = torch.from_numpy(lrs).float()
    step_lr = [lr_t.view(-1, *[1] * (p.ndim - 1)) for p in params]
    loss_log = np.empty((n_runs, steps), dtype=np.float32)
    acc = np.empty((n_runs, len(checkpoints)), dtype=np.float32)
    with _torch_threads(threads):
        c = 0
        for t in range(steps):
            idx = index[t]  # (R, m)
            logits = _forward(x[idx], params, setting, norm, True, running)
            losses = F.cross_entropy(logits.reshape(-1, 10), y[idx].reshape(-1),
                                     reduction="none").view(n_runs, m).mean(dim=1)
            grads = torch.autograd.grad(losses.sum(), params)
            with torch.no_grad():
                for p, g, r in zip(params, grads, step_lr, strict=True):
                    p.sub_(r * g)
            loss_log[:, t] = losses.detach().numpy()
            if t + 1 == checkpoints[c]:
                with torch.no_grad():
                    pred = _forward(ex, params, setting, norm, False, running)
                    acc[:, c] = (pred.argmax(dim=2) == ey).float().mean(dim=1).numpy()
                c += 1
    loss_log[~np.isfinite(loss_log)] = np.nan
    return Runs(norm=norm, setting=setting, lrs=lrs, seeds=seeds, loss=loss_log,
                steps=checkpoints, accuracy=acc, meta={"setting": asdict(setting)})


# ---------------------------------------------------------------- the shipped grid

def lr_label(lr: float) -> str:
    """How a learning rate is shown in widgets and legends: '0.05', '1.36', '1000'."""
    return f"{lr:.3g}" if lr < 1000 else f"{lr:.0f}"


LR_GRID = tuple(float(f"{lr:.3g}") for lr in np.geomspace(0.05, 1000.0, 10))
SEEDS = (0, 1, 2)
ABLATION_SETTING = Setting(steps=600)  # the default net; budgets 200/400/600 read off
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "lab" / "ablation.npz"
_REGENERATE = ("regenerate it with `python tools/reproduce_lab.py` (a few minutes), "
               "or restore it with `git checkout -- data/lab`")


def sha256_of(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_ablation(runs_by_norm: dict, path=DEFAULT_PATH) -> str:
    """Write {norm: Runs} as an .npz (fixed zip timestamps: same numbers, same bytes)
    and its sha256 into SHA256SUMS beside it. Returns the sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    first = next(iter(runs_by_norm.values()))
    entries = {"lrs": first.lrs, "seeds": first.seeds, "steps": first.steps,
               "meta": np.array(json.dumps(first.meta | {"norms": list(runs_by_norm)},
                                           sort_keys=True))}
    for norm, runs in runs_by_norm.items():
        entries[f"loss_{norm}"] = runs.loss
        entries[f"acc_{norm}"] = runs.accuracy
    write_stable_npz(path, entries)
    digest = sha256_of(path)
    (path.parent / "SHA256SUMS").write_text(f"{digest}  {path.name}\n")
    return digest


def load_ablation(path=None) -> dict:
    """{norm: Runs} from the shipped file, after checking its sha256 (SHA256SUMS).

    FileNotFoundError when the file or SHA256SUMS is missing, data.DataIntegrityError
    when the checksum does not match.
    """
    path = DEFAULT_PATH if path is None else Path(path)
    sums = path.parent / "SHA256SUMS"
    for need in (path, sums):
        if not need.is_file():
            raise FileNotFoundError(f"lab results missing: {need}; " + _REGENERATE)
    expected = dict(line.split("  ")[::-1] for line in sums.read_text().splitlines()
                    if "  " in line).get(path.name)
    actual = sha256_of(path)
    if actual != expected:
        raise DataIntegrityError(f"lab results corrupt: {path} has sha256 {actual}, "
                                 f"expected {expected}; " + _REGENERATE)
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(f["meta"].item())
        setting = Setting(**meta["setting"])
        return {norm: Runs(norm=norm, setting=setting, lrs=f["lrs"], seeds=f["seeds"],
                           loss=f[f"loss_{norm}"], steps=f["steps"],
                           accuracy=f[f"acc_{norm}"], meta=meta)
                for norm in meta["norms"]}
