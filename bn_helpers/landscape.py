"""Probes from Santurkar et al. (2018), "How Does Batch Normalization Help
Optimization?"

Three tools for the course's MNIST MLP (models.build_mlp), all in torch:

* ``NoisyBatchNorm1d`` / ``add_noise`` (their Sec. 2.1): BN whose output is scaled and
  shifted per unit by random amounts drawn anew at every training forward pass, so the
  distribution of the next layer's input is deliberately unstable.
* ``gradient_change`` (their Sec. 2.2): for layer i, the gradient G of the loss w.r.t.
  W_i, and G' the same gradient after the earlier layers took their SGD step (same
  batch); returns ||G - G'||_2 and cos(G, G').
* ``loss_along_gradient`` (their Sec. 3.1): loss and gradient at theta - eta * g for
  several step sizes eta, g the gradient at theta.

``track`` trains with plain SGD (batches as in training.train) and applies the last two
probes every few steps::

    t = track(net, x, y, lr=0.5, steps=1000, every=50, etas=(0.0, 0.5, 1.0), seed=0)
    t.ics_l2.shape  # (21 checkpoints, 3 layers with earlier layers)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from tqdm.auto import trange

from bn_helpers import _validate as v
from bn_helpers.models import check_seed
from bn_helpers.training import _as_tensor, _check_input_width, _torch_threads

__all__ = ["NoisyBatchNorm1d", "add_noise", "BNOutputRecorder", "grad_difference",
           "gradient_change",
           "loss_along_gradient", "Track", "track"]


class NoisyBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d followed by random noise whose distribution is redrawn every pass.

    In training mode each forward pass first draws, for every unit k, the moments of
    this step's noise (from its own torch.Generator, seeded with `seed`):
        scale_k ~ U(1, max_scale),  shift_k ~ U(-max_shift, max_shift),
        std_k ~ U(0, noise_std)
    and then, for every example i, independent noise xi_ik ~ N(0, 1):
        z_ik = scale_k * BN(x)_ik + shift_k + std_k * xi_ik      (N, H) -> (N, H).
    So each activation of each example gets noise of non-zero mean and non-unit
    variance, and those moments change at every step (Santurkar et al. 2018, Sec. 2.1).
    noise_std = 0 leaves only the per-unit scale and shift shared by the batch. The
    draws of the last pass are kept in `last_scale`, `last_shift`, `last_std` (H,), the
    output before the noise in `last_clean` (N, H). In eval mode the noise is replaced
    by its mean: z = (1 + max_scale) / 2 * BN(x). max_scale = 1, max_shift = 0 and
    noise_std = 0 give plain BN exactly.
    """

    def __init__(self, num_features: int, *, max_shift: float, max_scale: float,
                 seed: int, noise_std: float = 0.0, eps: float = 1e-5,
                 momentum: float = 0.1):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.max_shift = v.non_negative_float("max_shift", max_shift)
        self.max_scale = v.non_negative_float("max_scale", max_scale)
        self.noise_std = v.non_negative_float("noise_std", noise_std)
        if self.max_scale < 1:
            raise ValueError(f"max_scale must be >= 1 (scale ~ U(1, max_scale)), "
                             f"got {max_scale!r}")
        self.generator = torch.Generator().manual_seed(check_seed(seed))
        self.last_scale = torch.ones(num_features)
        self.last_shift = torch.zeros(num_features)
        self.last_std = torch.zeros(num_features)
        self.last_clean = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if not self.training:
            return out * ((1.0 + self.max_scale) / 2)
        h = self.num_features
        u = torch.rand(2, h, generator=self.generator)
        self.last_scale = 1.0 + (self.max_scale - 1.0) * u[0]
        self.last_shift = self.max_shift * (2.0 * u[1] - 1.0)
        self.last_clean = out.detach()
        noisy = out * self.last_scale + self.last_shift
        if self.noise_std == 0:  # no per-example draws: the old stream of noise
            return noisy
        self.last_std = self.noise_std * torch.rand(h, generator=self.generator)
        xi = torch.randn(out.shape, generator=self.generator, dtype=out.dtype)
        return noisy + self.last_std * xi

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", max_shift={self.max_shift}, "
                f"max_scale={self.max_scale}, noise_std={self.noise_std}")


def add_noise(model: nn.Sequential, *, max_shift: float, max_scale: float,
              seed: int, noise_std: float = 0.0) -> nn.Sequential:
    """A copy of `model` with every BatchNorm1d replaced by a NoisyBatchNorm1d.

    Weights, gamma, beta and running statistics are copied; BN layer j (from 0) draws
    its noise from a generator seeded with seed + j. `model` is left unchanged.
    noise_std > 0 adds per-example noise (see NoisyBatchNorm1d).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential (models.build_mlp), "
                        f"got {type(model).__name__}")
    seed = check_seed(seed)
    layers, j = [], 0
    for mod in model:
        if isinstance(mod, nn.BatchNorm1d):
            noisy = NoisyBatchNorm1d(mod.num_features, max_shift=max_shift,
                                     max_scale=max_scale, seed=seed + j,
                                     noise_std=noise_std, eps=mod.eps,
                                     momentum=mod.momentum)
            noisy.load_state_dict(mod.state_dict())
            layers.append(noisy)
            j += 1
        else:
            layers.append(copy.deepcopy(mod))
    if j == 0:
        raise ValueError("model has no BatchNorm1d layer to make noisy: build it with "
                         "models.build_mlp(batchnorm=True, ...)")
    return nn.Sequential(*layers)


class BNOutputRecorder:
    """Each unit's mean and std of every BN layer's output, gamma x_hat + beta (for a
    NoisyBatchNorm1d: before its noise), on every training-mode pass over exactly
    `n_rows` rows. Around training.train with a probe set of n_rows rows (not the
    batch size) it records at the train's checkpoints::

        with BNOutputRecorder(net, n_rows=1000) as rec:
            training.train(net, ..., probe_x=x_test[:1000], batch_size=60, ...)
        rec.mean[l], rec.std[l]        # (C, H) for BN layer l
        d_mu, d_s = rec.drift()        # (L,) mean |change| per checkpoint interval
    """

    def __init__(self, model: nn.Module, n_rows: int):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got "
                            f"{type(model).__name__}")
        self.n_rows = v.positive_int("n_rows", n_rows)
        self.layers = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
        if not self.layers:
            raise ValueError("model has no BatchNorm1d layer to record")
        self._rows = [[] for _ in self.layers]
        self._hooks = [m.register_forward_hook(self._hook(j))
                       for j, m in enumerate(self.layers)]

    def _hook(self, j: int):
        def hook(module, inputs, output):
            if module.training and len(inputs[0]) == self.n_rows:
                clean = getattr(module, "last_clean", None)
                out = (output if clean is None else clean).detach().double()
                self._rows[j].append((out.mean(0).numpy(),
                                      out.std(0, correction=0).numpy()))
        return hook

    def close(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def mean(self) -> list[np.ndarray]:
        return [np.array([r[0] for r in rows]) for rows in self._rows]

    @property
    def std(self) -> list[np.ndarray]:
        return [np.array([r[1] for r in rows]) for rows in self._rows]

    def drift(self) -> tuple[np.ndarray, np.ndarray]:
        """(D_mu, D_s), each (L,): per BN layer, the average over units and intervals
        of |change| of each unit's mean and std between recorded passes."""
        if any(len(rows) < 2 for rows in self._rows):
            raise ValueError("drift needs at least 2 recorded passes per layer")
        return (np.array([np.abs(np.diff(m, axis=0)).mean() for m in self.mean]),
                np.array([np.abs(np.diff(s, axis=0)).mean() for s in self.std]))


def grad_difference(g: torch.Tensor, g_prime: torch.Tensor) -> tuple[float, float]:
    """(||g - g'||_2, cos(g, g')) of two gradients of the same shape, flattened.

    The cosine of a zero gradient is reported as 1.0 if both are zero, else 0.0.
    """
    for name, t in (("g", g), ("g_prime", g_prime)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if g.shape != g_prime.shape:
        raise ValueError(f"g and g_prime must have the same shape, got "
                         f"{tuple(g.shape)} and {tuple(g_prime.shape)}")
    a, b = g.double().flatten(), g_prime.double().flatten()
    norms = a.norm() * b.norm()
    if norms == 0:
        cos = 1.0 if torch.equal(a, b) else 0.0
    else:
        cos = float(a @ b / norms)
    return float((a - b).norm()), cos


def _check_batch(model, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential (models.build_mlp), "
                        f"got {type(model).__name__}")
    x = _as_tensor("x", x, ndim=2, floating=True)
    y = _as_tensor("y", y, ndim=1, floating=False)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, "
                         f"got {len(x)} and {len(y)}")
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 examples (BN needs a batch), "
                         f"got {len(x)}")
    _check_input_width(model, "x", x)
    return x, y


def _loss_fn(model: nn.Module, x, y):
    """loss(params) on batch (x, y); buffers are copied, so the model's stay as is."""
    buffers = {k: b.clone() for k, b in model.named_buffers()}

    def loss(params: dict) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, (params, buffers), (x,)), y)

    return loss


def _grads(loss, params: dict, names: list[str]):
    """(loss value, {name: gradient}) for the parameters `names` of `params`."""
    value = loss(params)
    grads = torch.autograd.grad(value, [params[n] for n in names])
    return float(value.detach()), dict(zip(names, grads, strict=True))


def gradient_change(model: nn.Sequential, x, y, *, lr: float):
    """Santurkar et al.'s ICS of every Linear layer but the first, on batch (x, y).

    For Linear layer i (W_i, i = 2..L): G = d loss / d W_i at the current parameters;
    G' = d loss / d W_i after every parameter of the modules before W_i (weights,
    biases, gamma, beta) took one SGD step theta <- theta - lr * grad on the same batch.
    model: in training mode (BN uses batch statistics); it is not changed.
    x (m, D_in) float, y (m,) int. lr >= 0 (lr = 0 gives G' = G).
    Returns (l2, cos), each numpy (L - 1,): ||G - G'||_2 and cos(G, G') per layer.
    """
    l2, cos, _ = _gradient_change(model, x, y, lr=lr)
    return l2, cos


def _gradient_change(model, x, y, *, lr):
    """gradient_change's (l2, cos) and ||G||_2 per layer, each numpy (L - 1,)."""
    x, y = _check_batch(model, x, y)
    lr = v.non_negative_float("lr", lr)
    linear_at = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)]
    if len(linear_at) < 2:
        raise ValueError("model needs at least 2 Linear layers")
    params = {k: p.detach().requires_grad_() for k, p in model.named_parameters()}
    names = list(params)
    loss = _loss_fn(model, x, y)
    _, g = _grads(loss, params, names)
    l2, cos, norm = [], [], []
    for i in linear_at[1:]:
        w = f"{i}.weight"
        earlier = {n for n in names if int(n.split(".")[0]) < i}
        moved = {n: (p - lr * g[n]).detach().requires_grad_() if n in earlier else p
                 for n, p in params.items()}
        _, g_prime = _grads(loss, moved, [w])
        d, c = grad_difference(g[w], g_prime[w])
        l2.append(d)
        cos.append(c)
        norm.append(float(g[w].double().norm()))
    return np.array(l2), np.array(cos), np.array(norm)


def _check_etas(etas) -> np.ndarray:
    if isinstance(etas, (str, bytes)) or not hasattr(etas, "__len__") or not len(etas):
        raise TypeError(f"etas must be a non-empty sequence of step sizes >= 0, "
                        f"got {etas!r}")
    return np.array([v.non_negative_float(f"etas[{k}]", e) for k, e in enumerate(etas)])


def loss_along_gradient(model: nn.Sequential, x, y, etas):
    """Loss and gradient change along the negative gradient, on batch (x, y).

    g = gradient of the mean cross-entropy w.r.t. all parameters at theta. For each
    step size eta in `etas` (E values >= 0), theta' = theta - eta * g and
        loss[e]      = loss(theta')
        grad_diff[e] = ||grad(theta) - grad(theta')||_2   (all parameters, flattened)
    model: in training mode; it is not changed. x (m, D_in), y (m,).
    Returns (loss (E,), grad_diff (E,), ||g||_2) as numpy arrays and a float; eta = 0
    gives the loss at theta and grad_diff 0.
    """
    losses, diffs, norm, _ = _loss_along_gradient(model, x, y, etas)
    return losses, diffs, norm


def _loss_along_gradient(model, x, y, etas):
    """loss_along_gradient's three results and the loss at theta itself."""
    x, y = _check_batch(model, x, y)
    etas = _check_etas(etas)
    params = {k: p.detach().requires_grad_() for k, p in model.named_parameters()}
    names = list(params)
    loss = _loss_fn(model, x, y)
    base, g = _grads(loss, params, names)
    g_flat = torch.cat([g[n].flatten() for n in names])
    losses, diffs = [], []
    for eta in etas:
        moved = {n: (p - eta * g[n]).detach().requires_grad_()
                 for n, p in params.items()}
        value, g2 = _grads(loss, moved, names)
        losses.append(value)
        g2_flat = torch.cat([g2[n].flatten() for n in names])
        diffs.append(float((g_flat - g2_flat).norm()))
    return np.array(losses), np.array(diffs), float(g_flat.norm()), base


@dataclass(frozen=True, eq=False)
class Track:
    """What `track` recorded: C checkpoints, L - 1 Linear layers after the first, E
    step sizes.

    steps:      (C,) step of each checkpoint (0, every, ..., steps); measured on the
                batch of the next update, before it is applied
    loss:       (S,) training loss of the mini-batch at each of the S steps
    ics_l2:     (C, L - 1) ||G - G'||_2 per layer (gradient_change), averaged over
                the n_batches batches of the checkpoint
    ics_cos:    (C, L - 1) cos(G, G') per layer, averaged likewise
    ics_rel:    (C, L - 1) ||G - G'||_2 / ||G||_2 per layer, averaged likewise
    etas:       (E,) step sizes of the landscape probe
    land_loss:  (C, E) loss at theta - eta * g (loss_along_gradient), first batch
    loss_now:   (C,) loss at theta on that batch (eta = 0)
    grad_diff:  (C, E) ||grad(theta) - grad(theta - eta * g)||_2
    grad_norm:  (C,) ||g||_2
    config:     the arguments of the run
    """

    steps: np.ndarray
    loss: np.ndarray
    ics_l2: np.ndarray
    ics_cos: np.ndarray
    ics_rel: np.ndarray
    etas: np.ndarray
    land_loss: np.ndarray
    loss_now: np.ndarray
    grad_diff: np.ndarray
    grad_norm: np.ndarray
    config: dict = field(default_factory=dict)


def track(model: nn.Sequential, train_x, train_y, *, lr: float, steps: int, every: int,
          etas, seed: int, batch_size: int = 60, n_batches: int = 1,
          progress: bool = True, num_threads: int = 1,
          desc: str = "training") -> Track:
    """Plain mini-batch SGD (as training.train) with the probes every `every` steps.

    model: e.g. models.build_mlp(...); trained in place, in training mode.
    train_x (N, D_in) float, train_y (N,) int. Batches: consecutive slices of a
    permutation drawn each epoch from a torch.Generator seeded with `seed`.
    steps: a multiple of `every`; at steps 0, every, ..., steps the probes
    gradient_change(lr=lr) and loss_along_gradient(etas) run on the batch that the
    next update uses (at the last checkpoint: one extra batch, not trained on).
    n_batches > 1: gradient_change also runs on n_batches - 1 further batches drawn
    at random (generator seeded with seed + 1) and the ICS numbers are averaged.
    """
    x, y = _check_batch(model, train_x, train_y)
    lr = v.positive_float("lr", lr)
    steps = v.positive_int("steps", steps)
    every = v.positive_int("every", every)
    batch_size = v.positive_int("batch_size", batch_size)
    num_threads = v.positive_int("num_threads", num_threads)
    n_batches = v.positive_int("n_batches", n_batches)
    etas = _check_etas(etas)
    seed = check_seed(seed)
    if steps % every:
        raise ValueError(f"steps must be a multiple of every={every}, got {steps}")
    if not 2 <= batch_size <= len(x):
        raise ValueError(f"batch_size must be in [2, {len(x)}], got {batch_size}")

    gen = torch.Generator().manual_seed(seed)
    extra_gen = torch.Generator().manual_seed(seed + 1)
    per_epoch = len(x) // batch_size
    losses = torch.empty(steps)
    rec = {k: [] for k in ("l2", "cos", "rel", "land", "diff", "norm", "now")}
    params = list(model.parameters())

    def probe(xb, yb):
        ics = [_gradient_change(model, xb, yb, lr=lr)]
        for _ in range(n_batches - 1):
            idx = torch.randint(len(x), (batch_size,), generator=extra_gen)
            ics.append(_gradient_change(model, x[idx], y[idx], lr=lr))
        # each (n_batches, L - 1)
        l2, cos, norm = (np.array(a) for a in zip(*ics, strict=True))
        rec["l2"].append(l2.mean(0))
        rec["cos"].append(cos.mean(0))
        rec["rel"].append((l2 / np.where(norm > 0, norm, np.inf)).mean(0))
        land, diff, gnorm, now = _loss_along_gradient(model, xb, yb, etas)
        for k, val in zip(("land", "diff", "norm", "now"), (land, diff, gnorm, now),
                          strict=True):
            rec[k].append(val)

    def batch(step):
        nonlocal order
        slot = step % per_epoch
        if slot == 0:
            order = torch.randperm(len(x), generator=gen)
        idx = order[slot * batch_size:(slot + 1) * batch_size]
        return x[idx], y[idx]

    order = None
    model.train()
    with _torch_threads(num_threads):
        # the bar counts training steps, so it ends at steps/steps (no extra probe step)
        for step in trange(steps, desc=desc, disable=not progress, mininterval=0.5):
            xb, yb = batch(step)
            if step % every == 0:
                probe(xb, yb)
            loss = F.cross_entropy(model(xb), yb)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.add_(g, alpha=-lr)
            losses[step] = loss.detach()
        probe(*batch(steps))  # the last checkpoint: the batch the next update would use
    config = dict(seed=seed, lr=lr, steps=steps, every=every, batch_size=batch_size,
                  n_batches=n_batches,
                  batchnorm=any(isinstance(m, nn.BatchNorm1d) for m in model))
    return Track(steps=np.arange(0, steps + 1, every), loss=losses.numpy(),
                 ics_l2=np.array(rec["l2"]), ics_cos=np.array(rec["cos"]),
                 ics_rel=np.array(rec["rel"]), etas=etas,
                 land_loss=np.array(rec["land"]), loss_now=np.array(rec["now"]),
                 grad_diff=np.array(rec["diff"]),
                 grad_norm=np.array(rec["norm"]), config=config)
