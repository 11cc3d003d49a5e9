"""The BN graph figure: its nodes and arrows, and its backward labels as working code.

The backward labels are evaluated as numpy expressions, node by node from the output
back to x, and the result is compared with torch autograd: the picture must be the
gradient.
"""

import inspect
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from bn_helpers import batchnorm as bn
from bn_helpers import compgraph

EXPECTED_NODES = ["x", "mean", "centred", "variance", "std", "inverse", "normalised",
                  "scale", "shift", "output"]
# the variable that holds each node's gradient in the staged code
GRAD_OF = {"output": "dout", "shift": "dout", "scale": "ds", "normalised": "dx_hat",
           "inverse": "dinv_std", "std": "dstd", "variance": "dvar", "centred": "dxc",
           "mean": "dmu", "x": "dx"}


def _node_names(fig):
    (ax,) = fig.axes
    firsts = [t.get_text().split(":")[0] for t in ax.texts]
    return [name for name in firsts if name in compgraph.NODES]


def _param_names(fig):
    (ax,) = fig.axes
    return [t.get_text().split(":")[0] for t in ax.texts
            if t.get_text().split(":")[0] in compgraph.PARAMS]


def _arrows(fig):
    (ax,) = fig.axes
    return [(tuple(a.xyann), tuple(a.xy)) for a in ax.texts
            if isinstance(a, Annotation) and a.arrow_patch is not None]


@pytest.mark.parametrize("backward", [False, True])
def test_figure_has_every_node_once(backward):
    fig = compgraph.draw_bn_graph(backward=backward)
    assert isinstance(fig, Figure)
    assert sorted(_node_names(fig)) == sorted(EXPECTED_NODES)
    assert fig.axes[0].get_title()
    plt.close(fig)


@pytest.mark.parametrize("backward", [False, True])
def test_arrows_follow_the_edges(backward):
    fig = compgraph.draw_bn_graph(backward=backward)
    pos = {name: tuple(p[:2]) for name, p in compgraph.NODES.items()}
    pos.update({name: tuple(p[:2]) for name, p in compgraph.PARAMS.items()})
    expected = [(pos[d], pos[s]) if backward else (pos[s], pos[d])
                for s, d, _ in compgraph.EDGES]
    # parameter leaves: gamma and beta get their gradient back, eps (a constant) not
    expected += [(pos[node], pos[name]) if backward and learned
                 else (pos[name], pos[node])
                 for name, (*_, node, learned) in compgraph.PARAMS.items()]
    assert sorted(_arrows(fig)) == sorted(expected)
    plt.close(fig)


@pytest.mark.parametrize("backward", [False, True])
def test_parameters_are_leaf_nodes(backward):
    fig = compgraph.draw_bn_graph(backward=backward)
    assert sorted(_param_names(fig)) == ["beta", "eps", "gamma"]
    enters = {name: p[3] for name, p in compgraph.PARAMS.items()}
    assert enters == {"eps": "std", "gamma": "scale", "beta": "shift"}
    learned = {name for name, p in compgraph.PARAMS.items() if p[4]}
    assert {enters[name] for name in learned} == set(compgraph.PARAM_GRADS)
    plt.close(fig)


def test_fan_in_marks_where_gradients_add():
    feeds = {}
    for s, d, _ in compgraph.EDGES:
        feeds.setdefault(s, []).append(d)
    assert set(compgraph.FAN_IN) == {n for n, ds in feeds.items() if len(ds) > 1}
    fig = compgraph.draw_bn_graph(backward=True)
    texts = [t.get_text() for t in fig.axes[0].texts]
    for total in compgraph.FAN_IN.values():
        assert sum(total in t for t in texts) == 1
    plt.close(fig)
    fig = compgraph.draw_bn_graph()
    assert not any("dx =" in t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)


def test_fan_in_sums_add_the_edge_labels():
    """Each mark's sum is exactly the gradients on the node's outgoing edges."""
    for node, total in compgraph.FAN_IN.items():
        lhs, rhs = total.split(" = ")
        assert lhs == GRAD_OF[node]
        terms = {_expr(g) for s, _, g in compgraph.EDGES if s == node}
        assert set(rhs.split(" + ")) == terms, (node, rhs, terms)


def test_forward_edges_form_the_bn_graph():
    edges = {(s, d) for s, d, _ in compgraph.EDGES}
    assert edges == {("x", "mean"), ("x", "centred"), ("mean", "centred"),
                     ("centred", "variance"), ("variance", "std"), ("std", "inverse"),
                     ("inverse", "normalised"), ("centred", "normalised"),
                     ("normalised", "scale"), ("scale", "shift"), ("shift", "output")}


def _expr(label):
    return label.split(" = ", 1)[-1]


def test_backward_labels_compute_the_torch_gradient():
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 3.0, (7, 4))
    gamma, beta = rng.normal(1.0, 0.5, 4), rng.normal(size=4)
    dout = rng.normal(size=(7, 4))
    _, c = bn.batchnorm_forward(x, gamma, beta)
    env = {"xc": c.x_centered, "std": c.std, "inv_std": c.inv_std, "gamma": c.gamma,
           "x_hat": c.x_hat, "m": c.m, "sum": lambda a: a.sum(axis=0, keepdims=True),
           "dout": dout}
    # reverse topological order: a node's gradient is the sum over its outgoing edges
    for node in reversed(EXPECTED_NODES[:-1]):
        terms = [_expr(g) for s, _, g in compgraph.EDGES if s == node]
        env[GRAD_OF[node]] = sum(eval(t, {}, env) for t in terms)  # noqa: S307
    for node, total in compgraph.FAN_IN.items():  # the marks compute the same sum
        np.testing.assert_allclose(eval(_expr(total), {}, env),  # noqa: S307
                                   env[GRAD_OF[node]], rtol=1e-12, atol=1e-14)
    params = {name: eval(_expr(g), {}, env).reshape(-1)  # noqa: S307
              for name, g in compgraph.PARAM_GRADS.items()}

    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    F.batch_norm(xt, None, None, gt, bt, training=True).backward(torch.tensor(dout))
    np.testing.assert_allclose(env["dx"], xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params["scale"], gt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params["shift"], bt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_labels_name_the_variables_of_the_staged_code():
    source = inspect.getsource(bn._backward_staged)
    source_names = set(re.findall(r"\b[a-z_]+\b", source))
    labels = [g for *_, g in compgraph.EDGES] + list(compgraph.PARAM_GRADS.values())
    label_names = set(re.findall(r"\b[a-z_]+\b", " ".join(labels)))
    assert label_names - {"sum"} <= source_names
    for grad in ("dmu", "dxc", "dvar", "dstd", "dinv_std", "dx_hat", "ds", "dgamma",
                 "dbeta"):
        assert grad in label_names


def test_backward_must_be_bool():
    with pytest.raises(TypeError, match="backward"):
        compgraph.draw_bn_graph(backward="yes")
