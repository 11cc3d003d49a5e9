"""Instructor-only tests: several cases per exercise, expected values from torch.

Nothing here ships in the student edition. ``build()`` computes every case's inputs
and expected outputs in the grader's process (torch in float64, autograd for
gradients, ``torch.quantile`` etc.; never the course's own reference), before any
student code is loaded. Each case also carries the outputs of the typical mistakes of
issue 7 section 4, so feedback can name the mistake, not only the error.

An :class:`Exercise` says where the learner's code lives (``kind="package"``: a
function of bn_helpers/batchnorm.py; ``kind="notebook"``: a function defined in an
exercise cell), how the sandbox calls it (``recipe``) and whether torch is forbidden
(numpy exercises: torch is hidden from the sandbox, its use reported with the line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Case", "Exercise", "build"]

Arrays = dict[str, np.ndarray]


@dataclass
class Case:
    name: str
    spec: dict  # how the sandbox builds the call (JSON); arrays are named in `arrays`
    arrays: Arrays
    expected: dict[str, np.ndarray | None]
    rtol: float = 1e-7
    atol: float = 1e-9
    mistakes: list[tuple[Arrays, str]] = field(default_factory=list)
    check_dtype: bool = False  # the output must keep the input's dtype


@dataclass
class Exercise:
    number: str  # "2.1"
    notebook: str  # "02"
    function: str  # "batchnorm_forward", "_BatchNorm.forward", or a notebook def
    kind: str  # "package" | "notebook"
    recipe: str  # "call" | "backward" | "spatial_backward" | "layer"
    outputs: tuple[str, ...]
    cases: list[Case]
    no_torch: bool = True  # numpy exercise: torch hidden, use reported
    gradient: bool = False  # asks for a derivative: static check scores it 0

    @property
    def key(self) -> str:
        return f"{self.number}"


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float64))


def _n(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _a(name: str) -> dict:
    return {"a": name}


def _v(value) -> dict:
    return {"v": value}


# --------------------------------------------------------------- package exercises


def _bn_inputs(rng, n, d, eps, scale=1.0, offset=0.0):
    x = offset + scale * rng.normal(size=(n, d)) * rng.uniform(0.1, 5.0, size=d)
    return x, rng.normal(1.0, 0.5, size=d), rng.normal(0.0, 1.0, size=d)


def _forward_mistakes(x, gamma, beta, eps, axes):
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    m = x.size // mu.size
    shape = mu.shape
    g, b = gamma.reshape(shape), beta.reshape(shape)
    return [
        ({"out": g * (x - mu) / (np.sqrt(var) + eps) + b},
         "eps is outside the square root: x_hat = (x - mu) / sqrt(sigma2 + eps)"),
        ({"out": g * (x - mu) / np.sqrt(var * m / (m - 1) + eps) + b},
         "you normalise with the unbiased variance (m - 1); Alg. 1 divides by m"),
        ({"out": (x - mu) / np.sqrt(var + eps)},
         "gamma and beta are not applied: y = gamma * x_hat + beta"),
    ]


def _ex_forward() -> Exercise:
    cases = []
    for name, (seed, n, d, eps, scale, offset, dtype) in {
        "16x5 mixed scales": (10, 16, 5, 1e-5, 1.0, 3.0, np.float64),
        "m=2, eps=0.5": (11, 2, 3, 0.5, 0.2, 0.0, np.float64),
        "40x7 offset 1e3": (12, 40, 7, 1e-3, 0.05, 1e3, np.float64),
        "float32 8x4": (13, 8, 4, 1e-5, 1.0, 0.0, np.float32),
    }.items():
        x, gamma, beta = _bn_inputs(_rng(seed), n, d, eps, scale, offset)
        x, gamma, beta = x.astype(dtype), gamma.astype(dtype), beta.astype(dtype)
        out = F.batch_norm(_t(x), None, None, _t(gamma), _t(beta), True, 0.0, eps)
        loose = dtype == np.float32
        cases.append(Case(
            name, {"args": [_a("x"), _a("gamma"), _a("beta"), _v(eps)]},
            {"x": x, "gamma": gamma, "beta": beta},
            {"out": _n(out).astype(dtype)},
            rtol=1e-4 if loose else 1e-7, atol=1e-4 if loose else 1e-9,
            mistakes=_forward_mistakes(x.astype(np.float64), gamma, beta, eps, (0,)),
            check_dtype=True,
        ))
    return Exercise("2.1", "02", "batchnorm_forward", "package", "call",
                    ("out", "_cache"), cases)


def _backward_cases(spatial: bool) -> list[Case]:
    shapes = ({"2x3x4x5": (2, 3, 4, 5), "1x4x3x3": (1, 4, 3, 3),
               "5x2x1x2": (5, 2, 1, 2)} if spatial else
              {"8x4": (8, 4), "4x4 eps=0.1": (4, 4), "3x6": (3, 6), "32x3": (32, 3)})
    cases = []
    axes = (0, 2, 3) if spatial else (0,)
    for k, (name, shape) in enumerate(shapes.items()):
        rng = _rng(20 + k + 10 * spatial)
        eps = 0.1 if "eps" in name else 1e-5
        c = shape[1]
        x = rng.normal(0.5, 2.0, size=shape) * rng.uniform(0.2, 3.0, size=c).reshape(
            (1, c) + (1,) * (len(shape) - 2))
        gamma, beta = rng.normal(1.0, 0.5, size=c), rng.normal(size=c)
        dout = rng.normal(size=shape)
        xt, gt, bt = _t(x).requires_grad_(), _t(gamma).requires_grad_(), _t(beta)
        bt.requires_grad_()
        out = F.batch_norm(xt, None, None, gt, bt, True, 0.0, eps)
        dx, dgamma, dbeta = torch.autograd.grad((out * _t(dout)).sum(), (xt, gt, bt))
        # the typical mistakes, in float64 numpy (hints only, never the oracle)
        bshape = (1, c) + (1,) * (len(shape) - 2)
        mu, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
        m = x.size // c
        inv = 1 / np.sqrt(var + eps)
        xhat = (x - mu) * inv
        dxhat = dout * gamma.reshape(bshape)
        dvar = (dxhat * (x - mu)).sum(axis=axes, keepdims=True) * -0.5 * inv**3
        no_mu = dxhat * inv + dvar * 2 * (x - mu) / m
        no_var = (dxhat - dxhat.mean(axis=axes, keepdims=True)) * inv
        mistakes = [
            ({"dx": no_mu}, "your dx equals the gradient without the mu branch: mu "
             "depends on every x_i"),
            ({"dx": no_var}, "your dx misses the sigma2 branch: the variance depends "
             "on every x_i too"),
            ({"dx": dxhat * inv}, "your dx is dl/dx_hat / sigma only: both the mu and "
             "the sigma2 branch are missing"),
        ]
        if not spatial and shape[0] == shape[1]:
            mistakes.append(({"dgamma": (dout * xhat).sum(axis=1)},
                             "dgamma is summed over the wrong axis: sum over the "
                             "batch (axis 0), one value per feature"))
        cases.append(Case(
            name, {"args": [_a("x"), _a("gamma"), _a("beta"), _v(eps), _a("dout")],
                   "forward": ("spatial_batchnorm_forward" if spatial
                               else "batchnorm_forward")},
            {"x": x, "gamma": gamma, "beta": beta, "dout": dout},
            {"dx": _n(dx), "dgamma": _n(dgamma), "dbeta": _n(dbeta)},
            rtol=1e-6, atol=1e-9, mistakes=mistakes,
        ))
    return cases


def _ex_backward(number: str, function: str) -> Exercise:
    return Exercise(number, "03", function, "package", "backward",
                    ("dx", "dgamma", "dbeta"), _backward_cases(False), gradient=True)


def _ex_running() -> Exercise:
    cases = []
    for k, (m, d, momentum) in enumerate(((2, 3, 0.1), (7, 4, 0.3), (64, 2, 0.9))):
        rng = _rng(40 + k)
        x = rng.normal(1.0, 2.0, size=(m, d))
        old_mean, old_var = rng.normal(size=d), rng.uniform(0.5, 2.0, size=d)
        layer = torch.nn.BatchNorm1d(d, momentum=momentum, dtype=torch.float64)
        with torch.no_grad():
            layer.running_mean.copy_(_t(old_mean))
            layer.running_var.copy_(_t(old_var))
            layer(_t(x))
        bm, bv = x.mean(axis=0), x.var(axis=0)  # batch mean, biased sigma2_B
        unb = bv * m / (m - 1)
        mistakes = [
            ({"running_var": (1 - momentum) * old_var + momentum * bv},
             "the running variance must use the unbiased m/(m-1) * sigma2_B"),
            ({"running_mean": momentum * old_mean + (1 - momentum) * bm,
              "running_var": momentum * old_var + (1 - momentum) * unb},
             "the momentum convention is reversed: torch's new = (1 - momentum) * "
             "old + momentum * batch"),
        ]
        cases.append(Case(
            f"m={m}, momentum={momentum}",
            {"args": [_a("running_mean"), _a("running_var"), _a("batch_mean"),
                      _a("batch_var"), _v(m), _v(momentum)]},
            {"running_mean": old_mean, "running_var": old_var, "batch_mean": bm,
             "batch_var": bv},
            {"running_mean": _n(layer.running_mean),
             "running_var": _n(layer.running_var)},
            mistakes=mistakes,
        ))
    return Exercise("4.1", "04", "update_running_stats", "package", "call",
                    ("running_mean", "running_var"), cases)


def _ex_inference() -> Exercise:
    cases = []
    for k, (n, d, eps) in enumerate(((6, 4, 1e-5), (1, 5, 1e-5), (9, 3, 0.3))):
        rng = _rng(50 + k)
        x = rng.normal(2.0, 3.0, size=(n, d))
        gamma, beta = rng.normal(1.0, 0.5, size=d), rng.normal(size=d)
        mean, var = rng.normal(size=d), rng.uniform(0.01, 3.0, size=d)
        y = F.batch_norm(_t(x), _t(mean), _t(var), _t(gamma), _t(beta), False, 0.0, eps)
        mistakes = [
            ({"y": gamma * (x - mean) / (np.sqrt(var) + eps) + beta},
             "eps is outside the square root: gamma / sqrt(Var[x] + eps)"),
            ({"y": gamma * (x - x.mean(0)) / np.sqrt(x.var(0) + eps) + beta},
             "you use the batch statistics; inference uses the population mean/var"),
        ]
        cases.append(Case(
            f"{n}x{d}, eps={eps}",
            {"args": [_a("x"), _a("gamma"), _a("beta"), _a("mean"), _a("var"),
                      _v(eps)]},
            {"x": x, "gamma": gamma, "beta": beta, "mean": mean, "var": var},
            {"y": _n(y)}, mistakes=mistakes,
        ))
    return Exercise("4.2", "04", "batchnorm_inference", "package", "call", ("y",),
                    cases)


def _ex_layer() -> Exercise:
    cases = []
    for k, (d, momentum, eps, sizes, evals) in enumerate((
        (4, 0.1, 1e-5, (5, 2, 9), (1, 4)),
        (3, 0.3, 1e-3, (16, 3), (7,)),
    )):
        rng = _rng(60 + k)
        ref = torch.nn.BatchNorm1d(d, eps=eps, momentum=momentum, dtype=torch.float64)
        arrays, expected = {}, {}
        with torch.no_grad():
            for i, m in enumerate(sizes):
                x = rng.normal(i, 1.0 + i, size=(m, d))
                arrays[f"x{i}"] = x
                expected[f"train{i}"] = _n(ref(_t(x)))
                expected[f"running_mean{i}"] = _n(ref.running_mean)
                expected[f"running_var{i}"] = _n(ref.running_var)
            ref.eval()
            for i, n in enumerate(evals):
                e = rng.normal(1.0, 2.0, size=(n, d))
                arrays[f"e{i}"] = e
                expected[f"eval{i}"] = _n(ref(_t(e)))
        spec = {"cls": "BatchNorm1d", "features": d, "eps": eps, "momentum": momentum,
                "train_steps": len(sizes), "eval_steps": len(evals)}
        cases.append(Case(f"BatchNorm1d({d}), {len(sizes)} train + {len(evals)} eval",
                          spec, arrays, expected))
    return Exercise("4.3", "04", "_BatchNorm.forward", "package", "layer",
                    (), cases)


def _ex_spatial_forward() -> Exercise:
    cases = []
    for k, shape in enumerate(((2, 3, 4, 5), (1, 4, 3, 3), (6, 2, 1, 1))):
        rng = _rng(70 + k)
        c = shape[1]
        x = rng.normal(size=shape) * rng.uniform(0.1, 5, size=(1, c, 1, 1)) + 2.0
        gamma, beta = rng.normal(1.0, 0.5, size=c), rng.normal(size=c)
        out = F.batch_norm(_t(x), None, None, _t(gamma), _t(beta), True, 0.0, 1e-5)
        g, b = gamma.reshape(1, c, 1, 1), beta.reshape(1, c, 1, 1)
        per_nhw_wrong = g * (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) + b
        mistakes = [
            ({"out": per_nhw_wrong}, "statistics over N only: spatial BN averages each "
             "channel over N, H and W (m = N*H*W)"),
            ({"out": g * (x - x.mean((0, 1), keepdims=True))
              / np.sqrt(x.var((0, 1), keepdims=True) + 1e-5) + b},
             "statistics over the wrong axes: one statistic per channel (axis 1)"),
        ]
        cases.append(Case(
            "x".join(map(str, shape)),
            {"args": [_a("x"), _a("gamma"), _a("beta"), _v(1e-5)]},
            {"x": x, "gamma": gamma, "beta": beta}, {"out": _n(out)},
            mistakes=mistakes,
        ))
    return Exercise("5.1", "05", "spatial_batchnorm_forward", "package", "call",
                    ("out", "_cache"), cases)


def _ex_spatial_backward() -> Exercise:
    return Exercise("5.2", "05", "spatial_batchnorm_backward", "package",
                    "spatial_backward", ("dx", "dgamma", "dbeta"),
                    _backward_cases(True), gradient=True)


# -------------------------------------------------------------- notebook exercises


def _ex_batch_stats() -> Exercise:
    cases = []
    for k, shape in enumerate(((10, 3), (2, 5), (100, 1))):
        x = _rng(80 + k).normal(3.0, 2.0, size=shape)
        var, mu = torch.var_mean(_t(x), dim=0, correction=0)
        cases.append(Case(f"{shape[0]}x{shape[1]}", {"args": [_a("x")]}, {"x": x},
                          {"mu": _n(mu), "var": _n(var)},
                          mistakes=[({"var": x.var(0, ddof=1)},
                                     "the variance divides by m - 1; Alg. 1 divides "
                                     "by m")]))
    return Exercise("0.1", "00", "batch_stats", "notebook", "call", ("mu", "var"),
                    cases)


def _quantile_cases(seed, q=None):
    cases = []
    for k, shape in enumerate(((50, 4), (7, 3), (1000, 2))):
        z = _rng(seed + k).normal(size=shape).astype(np.float32)
        qs = (15, 50, 85) if q is None else q
        expected = _n(torch.quantile(_t(z), _t(np.array(qs) / 100.0), dim=0))
        args = [_a("z")] + ([] if q is None else [_v(list(q))])
        cases.append(Case(f"{shape[0]}x{shape[1]}, q={qs}", {"args": args}, {"z": z},
                          {"p": expected}, rtol=1e-6, atol=1e-7))
    return cases


def _ex_unit_percentiles() -> Exercise:
    return Exercise("1.2", "01", "unit_percentiles", "notebook", "call", ("p",),
                    _quantile_cases(90), no_torch=False)


def _ex_mean_abs_change() -> Exercise:
    cases = []
    for k, shape in enumerate(((5, 3), (2, 1), (40, 10))):
        a = _rng(95 + k).normal(size=shape)
        t = _t(a)
        cases.append(Case(f"{shape[0]}x{shape[1]}", {"args": [_a("a")]}, {"a": a},
                          {"d": _n((t[1:] - t[:-1]).abs().mean())}))
    return Exercise("1.3", "01", "mean_abs_change", "notebook", "call", ("d",), cases,
                    no_torch=False)


def _ex_weight_grad() -> Exercise:
    cases = []
    for k, (m, n_in, d, a) in enumerate(((8, 5, 3, 1.0), (16, 4, 6, 2.5))):
        rng = _rng(100 + k)
        W, u = a * rng.normal(size=(d, n_in)), rng.normal(size=(m, n_in))
        gamma, beta, dout = rng.normal(1, 0.3, d), rng.normal(size=d), rng.normal(
            size=(m, d))
        wt = _t(W).requires_grad_()
        y = F.batch_norm(_t(u) @ wt.T, None, None, _t(gamma), _t(beta), True, 0.0, 1e-5)
        (dW,) = torch.autograd.grad((y * _t(dout)).sum(), (wt,))
        cases.append(Case(
            f"m={m}, a={a}",
            {"args": [_a("W"), _a("u"), _a("gamma"), _a("beta"), _a("dout"), _v(1e-5)]},
            {"W": W, "u": u, "gamma": gamma, "beta": beta, "dout": dout},
            {"dW": _n(dW)}, rtol=1e-6, atol=1e-9,
        ))
    return Exercise("6.1", "06", "weight_grad", "notebook", "call", ("dW",), cases,
                    gradient=True)


def _ex_percentiles() -> Exercise:
    return Exercise("7.1", "07", "percentiles", "notebook", "call", ("p",),
                    _quantile_cases(110, q=(15, 50, 85)) + [
                        c for c in _quantile_cases(120, q=(5, 95))][:1],
                    no_torch=False)


def _ex_first_step() -> Exercise:
    cases = []
    steps = np.arange(0, 5000, 500)
    acc = np.array([0.1, 0.5, 0.8, 0.9, 0.92, 0.91, 0.95, 0.97, 0.96, 0.98])
    for target in (0.9, 0.95, 0.99, 0.05):
        reached = np.flatnonzero(acc >= target)
        expected = np.asarray(steps[reached[0]]) if reached.size else None
        cases.append(Case(f"target {target}",
                          {"args": [_a("steps"), _a("accuracy"), _v(target)]},
                          {"steps": steps, "accuracy": acc}, {"step": expected}))
    return Exercise("7.2", "07", "first_step_reaching", "notebook", "call", ("step",),
                    cases, no_torch=False)


def _ex_batch_stat_noise() -> Exercise:
    cases = []
    for k, (n, d, m) in enumerate(((500, 4, 16), (300, 3, 4))):
        x = _rng(130 + k).normal(size=(n, d)) * np.arange(1, d + 1)
        # sampling with replacement: Var(mu_B) = population variance / m, per feature
        expected = _n(torch.std(_t(x), dim=0, correction=0) / np.sqrt(m))
        cases.append(Case(f"N={n}, m={m}",
                          {"args": [_a("x"), _v(m), _v(20000), {"rng": 7 + k}]},
                          {"x": x}, {"std": expected}, rtol=0.05, atol=0.0))
    return Exercise("8.1", "08", "batch_stat_noise", "notebook", "call", ("std",),
                    cases, no_torch=False)


def _ex_ics() -> Exercise:
    cases = []
    for k, shape in enumerate(((30,), (4, 5), (2, 3, 3))):
        rng = _rng(140 + k)
        g, g2 = rng.normal(size=shape), rng.normal(size=shape)
        if k == 2:
            g2 = 0.9 * g + 0.1 * g2
        l2 = torch.linalg.vector_norm(_t(g) - _t(g2))
        cos = F.cosine_similarity(_t(g).reshape(1, -1), _t(g2).reshape(1, -1))[0]
        cases.append(Case("x".join(map(str, shape)), {"args": [_a("G"), _a("G2")]},
                          {"G": g, "G2": g2}, {"l2": _n(l2), "cos": _n(cos)}))
    return Exercise("9.1", "09", "ics", "notebook", "call", ("l2", "cos"), cases,
                    no_torch=False)


@cache
def build() -> tuple[Exercise, ...]:
    """Every hidden test with its expected values (computed once per process)."""
    return (
        _ex_forward(),
        _ex_backward("3.7", "batchnorm_backward"),
        _ex_backward("3.8", "batchnorm_backward_alt"),
        _ex_running(),
        _ex_inference(),
        _ex_layer(),
        _ex_spatial_forward(),
        _ex_spatial_backward(),
        _ex_batch_stats(),
        _ex_unit_percentiles(),
        _ex_mean_abs_change(),
        _ex_weight_grad(),
        _ex_percentiles(),
        _ex_first_step(),
        _ex_batch_stat_noise(),
        _ex_ics(),
    )
