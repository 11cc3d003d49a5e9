"""The computational graph of the BN forward pass, drawn with matplotlib (notebook 03).

Ten nodes, one per step of the staged code in ``batchnorm._backward_staged``, top to
bottom: x -> mean -> centred -> variance -> std -> inverse -> normalised -> scale ->
shift -> output, and three parameter leaves: eps (a constant), gamma and beta (learned).
With ``backward=True`` every edge is reversed and labelled with the gradient it carries,
in the names of that code (``dx_hat``, ``dinv_std``, ``dvar``, ``dmu`` ...), and the
two nodes that feed two others (x and centred) are marked where their gradients add.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from bn_helpers.plots import BN_COLOR, NO_BN_COLOR

__all__ = ["NODES", "EDGES", "PARAMS", "PARAM_GRADS", "FAN_IN", "draw_bn_graph"]

_LEFT, _RIGHT = -3.3, 3.3  # the side columns; the main path runs down x = 0

# name -> (x, y position, what the node computes in the seed's symbols)
NODES: dict[str, tuple[float, float, str]] = {
    "x": (0.0, 0.0, r"$x_i$"),
    "mean": (_LEFT, -1.0, r"$\mu_\mathcal{B}=\frac{1}{m}\sum_i x_i$"),
    "centred": (0.0, -2.0, r"$x_i-\mu_\mathcal{B}$"),
    "variance": (_RIGHT, -3.0,
                 r"$\sigma_\mathcal{B}^2=\frac{1}{m}\sum_i(x_i-\mu_\mathcal{B})^2$"),
    "std": (_RIGHT, -4.0, r"$\sqrt{\sigma_\mathcal{B}^2+\epsilon}$"),
    "inverse": (_RIGHT, -5.0, r"$1/\sqrt{\sigma_\mathcal{B}^2+\epsilon}$"),
    "normalised": (0.0, -6.0, r"$\hat{x}_i$ = centred $\times$ inverse"),
    "scale": (0.0, -7.0, r"$s_i=\gamma\,\hat{x}_i$"),
    "shift": (0.0, -8.0, r"$y_i=s_i+\beta$"),
    "output": (0.0, -9.0, r"$y_i$ to the loss $\ell$"),
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

# parameter leaf -> (x, y, symbol, the node it enters, learned by gradient descent?)
PARAMS: dict[str, tuple[float, float, str, str, bool]] = {
    "eps": (_RIGHT + 3.05, -4.0, r"$\epsilon$", "std", False),
    "gamma": (-4.3, -7.0, r"$\gamma$", "scale", True),
    "beta": (-4.3, -8.0, r"$\beta$", "shift", True),
}

# the parameter gradients, collected at the node where the parameter enters
PARAM_GRADS: dict[str, str] = {
    "scale": "dgamma = sum(ds * x_hat)",
    "shift": "dbeta = sum(dout)",
}

# nodes that feed two others: their gradient is the sum of what comes back on each path
FAN_IN: dict[str, str] = {
    "x": "dx = dxc + dmu / m",
    "centred": "dxc = dx_hat * inv_std + 2 * xc * dvar / m",
}

_FONT = 11.0  # node labels; 15 px at 100 dpi in a 900 px figure
_GRAD_FONT = 10.0
_BOX = dict(boxstyle="round,pad=0.35", facecolor="white", linewidth=1.4)
_PARAM_BOX = dict(boxstyle="round,pad=0.3", facecolor="#F2F2F2", linewidth=1.2,
                  linestyle="--")


# where the gradient label of a slanted edge goes: (x, y, ha, va), clear of the boxes
_SLANTED_LABEL_AT = {
    ("x", "mean"): (-2.05, -0.3, "right", "center"),
    ("mean", "centred"): (-1.45, -1.62, "right", "top"),
    ("centred", "variance"): (1.75, -2.42, "left", "bottom"),
    ("inverse", "normalised"): (2.05, -5.5, "left", "top"),
}


def _grad_label(ax, src, dst, text: str, edge=None) -> None:
    """Right of a vertical edge, above a horizontal one, next to a slanted one."""
    (x0, y0), (x1, y1) = src, dst
    style = dict(fontsize=_GRAD_FONT, family="monospace", color=BN_COLOR, zorder=4)
    if edge in _SLANTED_LABEL_AT:
        x, y, ha, va = _SLANTED_LABEL_AT[edge]
        ax.text(x, y, text, ha=ha, va=va, **style)
    elif x0 == x1:  # to the right: the side columns leave room there
        ax.text(x0 + 0.18, (y0 + y1) / 2, text, va="center", ha="left", **style)
    elif y0 == y1:
        ax.text((x0 + x1) / 2, y0 + 0.2, text, ha="center", va="bottom", **style)
    else:
        raise ValueError(f"no label position for the slanted edge {edge}")


def _arrow(ax, tail, head, boxes, color, backward, style="-|>"):
    ax.annotate("", xy=head[1], xytext=tail[1],
                arrowprops=dict(arrowstyle=style, color=color, lw=1.5,
                                ls="--" if backward else "-", shrinkA=0, shrinkB=0,
                                patchA=boxes[tail[0]].get_bbox_patch(),
                                patchB=boxes[head[0]].get_bbox_patch()), zorder=3.5)


def draw_bn_graph(backward: bool = False) -> Figure:
    """Draw the BN graph; forward arrows, or with backward=True the gradient flow.

    Returns the matplotlib Figure (one Axes). Each node is a Text "name:  formula"
    (name: a key of NODES or PARAMS); each arrow is an Annotation from its tail to
    its head position.
    """
    if not isinstance(backward, bool):
        raise TypeError(
            f"backward must be True or False, got {type(backward).__name__}")
    color = BN_COLOR if backward else NO_BN_COLOR
    fig, ax = plt.subplots(figsize=(9.0, 6.6), layout="constrained")
    ax.set_xlim(-6.2, 7.4)
    ax.set_ylim(-9.45, 0.4)
    ax.axis("off")
    boxes, pos = {}, {}
    for name, (x, y, formula) in NODES.items():
        pos[name] = (x, y)
        boxes[name] = ax.text(x, y, f"{name}:  {formula}", ha="center", va="center",
                              fontsize=_FONT, bbox=dict(_BOX, edgecolor=NO_BN_COLOR),
                              zorder=3)
    for name, (x, y, symbol, _, learned) in PARAMS.items():
        pos[name] = (x, y)
        boxes[name] = ax.text(x, y, f"{name}:  {symbol}", ha="center", va="center",
                              fontsize=_FONT, color="black" if learned else "0.35",
                              bbox=dict(_PARAM_BOX, edgecolor="0.35"), zorder=3)
    for src, dst, grad in EDGES:
        tail, head = (dst, src) if backward else (src, dst)
        _arrow(ax, (tail, pos[tail]), (head, pos[head]), boxes, color, backward)
        if backward:
            _grad_label(ax, pos[src], pos[dst], grad, (src, dst))
    for name, (*_, node, learned) in PARAMS.items():
        if not backward:
            _arrow(ax, (name, pos[name]), (node, pos[node]), boxes, "0.35", False)
        elif learned:
            _arrow(ax, (node, pos[node]), (name, pos[name]), boxes, color, True)
            _grad_label(ax, pos[name], pos[node], PARAM_GRADS[node])
        else:  # a constant: the forward edge, grey, with no gradient coming back
            _arrow(ax, (name, pos[name]), (node, pos[node]), boxes, "0.6", False)
    if backward:
        ax.set_title("Backward: gradients flow up from the loss to x\n(dashed: the "
                     r"gradient each edge carries back; $\bigoplus$: gradients add)",
                     fontsize=_FONT)
        fig.canvas.draw()  # the boxes' sizes: a fan-in mark goes just right of its box
        to_data = ax.transData.inverted()
        for name, total in FAN_IN.items():
            right = to_data.transform(
                boxes[name].get_bbox_patch().get_window_extent().corners()[-1])[0]
            ax.text(right + 0.12, pos[name][1], rf"$\bigoplus$ {total}", ha="left",
                    va="center", fontsize=_GRAD_FONT, family="monospace",
                    color=BN_COLOR, fontweight="bold", zorder=4)
    else:
        ax.set_title("Forward pass of BN, one feature, examples i = 1..m\n"
                     "(grey boxes: parameters; eps is a constant, gamma and beta are "
                     "learned)", fontsize=_FONT)
    return fig
