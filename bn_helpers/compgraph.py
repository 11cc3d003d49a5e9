"""The computational graph of the BN forward pass, drawn with matplotlib (notebook 03).

Ten nodes, one per step of the staged code in ``batchnorm._backward_staged``: x -> mean
-> centred -> variance -> std -> inverse -> normalised -> scale -> shift -> output.
With ``backward=True`` every edge is reversed and labelled with the gradient it carries,
in the variable names of that code (``dx_hat``, ``dinv_std``, ``dvar``, ``dmu`` ...).
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from bn_helpers.plots import BN_COLOR, NO_BN_COLOR

__all__ = ["NODES", "EDGES", "PARAM_GRADS", "draw_bn_graph"]

# name -> (x, y position, what the node computes in the seed's symbols)
NODES: dict[str, tuple[float, float, str]] = {
    "x": (0.0, 0.0, r"$x_i$"),
    "mean": (2.3, -1.5, r"$\mu_\mathcal{B}=\frac{1}{m}\sum_i x_i$"),
    "centred": (4.6, 0.0, r"$x_i-\mu_\mathcal{B}$"),
    "variance": (6.4, 1.6,
                 r"$\sigma_\mathcal{B}^2=\frac{1}{m}\sum_i(x_i-\mu_\mathcal{B})^2$"),
    "std": (9.8, 1.6, r"$\sqrt{\sigma_\mathcal{B}^2+\epsilon}$"),
    "inverse": (13.0, 1.6, r"$1/\sqrt{\sigma_\mathcal{B}^2+\epsilon}$"),
    "normalised": (13.0, 0.0, r"$\hat{x}_i$ = centred $\times$ inverse"),
    "scale": (16.0, 0.0, r"$s_i=\gamma\,\hat{x}_i$"),
    "shift": (18.4, 0.0, r"$y_i=s_i+\beta$"),
    "output": (20.8, 0.0, r"$y_i$ to the loss $\ell$"),
}

# forward edge (from, to) and the gradient it carries back: d loss / d from, via `to`
EDGES: list[tuple[str, str, str]] = [
    ("x", "mean", "dmu / m"),
    ("x", "centred", "dxc"),
    ("mean", "centred", "dmu = -sum(dxc)"),
    ("centred", "variance", "2 * xc * dvar / m"),
    ("variance", "std", "dvar = dstd / (2 * std)"),
    ("std", "inverse", "dstd = -dinv_std / std**2"),
    ("inverse", "normalised", "dinv_std = sum(dx_hat * xc)"),
    ("centred", "normalised", "dx_hat * inv_std"),
    ("normalised", "scale", "dx_hat = gamma * ds"),
    ("scale", "shift", "ds = dout"),
    ("shift", "output", "dout"),
]

# the parameter gradients, collected at the node where the parameter enters
PARAM_GRADS: dict[str, str] = {
    "scale": "dgamma = sum(ds * x_hat)",
    "shift": "dbeta = sum(dout)",
}

_BOX = dict(boxstyle="round,pad=0.45", facecolor="white", linewidth=1.4)
_GRAD_TEXT = dict(fontsize=8.5, family="monospace", color=BN_COLOR, zorder=4)


def _two_lines(label: str) -> str:
    """Break a gradient label after ' = ' (or near its middle) to fit a short edge."""
    if " = " in label:
        return label.replace(" = ", " =\n", 1)
    return textwrap.fill(label, width=max(10, len(label) // 2 + 1))


def _label_edge(ax, src, dst, grad: str) -> None:
    """Horizontal edge: one line above the boxes; slanted edge: on the arrow itself."""
    (x0, y0), (x1, y1) = src, dst
    if y0 == y1:
        ax.text((x0 + x1) / 2, y0 + 0.4, grad, ha="center", va="bottom", **_GRAD_TEXT)
    else:  # the white box interrupts the dashes
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, _two_lines(grad), ha="center",
                va="center", **_GRAD_TEXT,
                bbox=dict(boxstyle="square,pad=0.15", facecolor="white",
                          edgecolor="none"))


def draw_bn_graph(backward: bool = False) -> Figure:
    """Draw the BN graph; forward arrows, or with backward=True the gradient flow.

    Returns the matplotlib Figure (one Axes); each node is a Text whose first line is
    the node's name (the keys of NODES).
    """
    if not isinstance(backward, bool):
        raise TypeError(
            f"backward must be True or False, got {type(backward).__name__}")
    color = BN_COLOR if backward else NO_BN_COLOR
    fig, ax = plt.subplots(figsize=(14, 4.8), layout="constrained")
    boxes = {}
    for name, (x, y, formula) in NODES.items():
        boxes[name] = ax.text(x, y, f"{name}\n{formula}", ha="center", va="center",
                              fontsize=9.5, bbox=dict(_BOX, edgecolor=NO_BN_COLOR),
                              zorder=3)
    for src, dst, grad in EDGES:
        tail, head = (dst, src) if backward else (src, dst)
        ax.annotate("", xy=NODES[head][:2], xytext=NODES[tail][:2],
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=1.5,
                                    ls="--" if backward else "-", shrinkA=0, shrinkB=0,
                                    patchA=boxes[tail].get_bbox_patch(),
                                    patchB=boxes[head].get_bbox_patch()), zorder=2)
        if backward:
            _label_edge(ax, NODES[src][:2], NODES[dst][:2], grad)
    if backward:
        for name, grad in PARAM_GRADS.items():
            x, y, _ = NODES[name]
            ax.text(x, y - 0.5, _two_lines(grad), ha="center", va="top", **_GRAD_TEXT)
        title = ("Backward pass: gradients flow from the output back to x\n"
                 "(each label: the gradient sent to the node the arrow points to, "
                 "as named in the staged code)")
    else:
        title = ("Forward pass of BN as a computational graph "
                 "(one feature, examples i = 1..m)")
    ax.set_title(title)
    ax.set_xlim(-0.6, 22.0)
    ax.set_ylim(-2.2, 2.5)
    ax.axis("off")
    return fig
