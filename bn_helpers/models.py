"""The course's MNIST networks in torch: the paper's MLP, with or without BatchNorm.

Ioffe & Szegedy (2015), Sec. 4.1: 784-100-100-100-10, sigmoid hidden units, weights
drawn from a small Gaussian; "BN" adds Batch Normalization to each hidden layer before
its nonlinearity (Sec. 3.2). Without BN a hidden layer is ``Linear -> Sigmoid``; with BN
it is ``Linear(bias=False) -> BatchNorm1d -> Sigmoid`` (beta takes the bias's role).

>>> net = build_mlp(batchnorm=True, init_std=0.1, seed=0)
>>> [type(m).__name__ for m in net][:3]
['Linear', 'BatchNorm1d', 'Sigmoid']
"""

from __future__ import annotations

import torch
from torch import nn

from bn_helpers import _validate as v
from bn_helpers import torch_bridge

__all__ = ["PAPER_SIZES", "ACTIVATIONS", "build_mlp", "activation_modules",
           "check_seed"]

PAPER_SIZES = (784, 100, 100, 100, 10)
BN_IMPLS = ("torch", "numpy", "auto")
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def check_seed(seed) -> int:
    """`seed` if it is an int in [0, 2**63) (what torch.Generator takes), else raise."""
    return v.seed("seed", seed)


def _check_sizes(sizes) -> tuple[int, ...]:
    if not isinstance(sizes, (tuple, list)):
        raise TypeError(f"sizes must be a tuple of ints such as {PAPER_SIZES}, "
                        f"got {type(sizes).__name__}")
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least input and output width, "
                         f"got {sizes!r}")
    return tuple(v.positive_int(f"sizes[{i}]", n) for i, n in enumerate(sizes))


def _bn_layer_class(bn_impl: str):
    """nn.BatchNorm1d or the learner's NumpyBatchNorm1d, for build_mlp's bn_impl."""
    if bn_impl == "auto":
        missing = torch_bridge.learner_bn_status()
        if missing is None:
            return torch_bridge.NumpyBatchNorm1d
        print(f"Using torch's BatchNorm1d: your BN is not complete yet ({missing})")
        return nn.BatchNorm1d
    return torch_bridge.NumpyBatchNorm1d if bn_impl == "numpy" else nn.BatchNorm1d


def build_mlp(sizes=PAPER_SIZES, *, batchnorm: bool = False,
              activation: str = "sigmoid", init_std: float, seed: int,
              bn_impl: str = "torch") -> nn.Sequential:
    """A fully connected net; every layer but the last is followed by `activation`.

    sizes: widths (input, hidden..., output), e.g. (784, 100, 100, 100, 10).
    batchnorm: put a BatchNorm1d between each hidden Linear and its activation.
    bn_impl: "torch" (nn.BatchNorm1d), "numpy" (your bn_helpers.batchnorm through
        torch_bridge.NumpyBatchNorm1d) or "auto" (yours if its functions are all
        implemented, else torch's, with a printed line saying so).
    init_std: weights ~ N(0, init_std^2), drawn from torch.Generator seeded with `seed`;
        biases start at 0; BN starts at gamma = 1, beta = 0.
    Input (N, sizes[0]) float32 -> logits (N, sizes[-1]).
    """
    sizes = _check_sizes(sizes)
    if not isinstance(batchnorm, bool):
        raise TypeError(f"batchnorm must be True or False, "
                        f"got {type(batchnorm).__name__}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, "
                         f"got {activation!r}")
    init_std = v.positive_float("init_std", init_std)
    if bn_impl not in BN_IMPLS:
        raise ValueError(f"bn_impl must be one of {BN_IMPLS}, got {bn_impl!r}")
    bn_class = _bn_layer_class(bn_impl) if batchnorm else None
    gen = torch.Generator().manual_seed(check_seed(seed))
    layers: list[nn.Module] = []
    n_layers = len(sizes) - 1
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        hidden = i < n_layers - 1
        # nn.Linear's default init draws from torch's global RNG; fork it so that
        # building a model leaves the caller's random stream untouched (no hidden state)
        with torch.random.fork_rng(devices=[]):
            linear = nn.Linear(n_in, n_out, bias=not (batchnorm and hidden))
        with torch.no_grad():
            linear.weight.normal_(0.0, init_std, generator=gen)
            if linear.bias is not None:
                linear.bias.zero_()
        layers.append(linear)
        if hidden:
            if batchnorm:
                layers.append(bn_class(n_out))
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def activation_modules(model: nn.Module) -> list[nn.Module]:
    """The hidden nonlinearities of `model`, in forward order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    kinds = tuple(ACTIVATIONS.values())
    mods = [m for m in model.modules() if isinstance(m, kinds)]
    if not mods:
        raise ValueError(f"model has no {'/'.join(ACTIVATIONS)} modules to record from")
    return mods
