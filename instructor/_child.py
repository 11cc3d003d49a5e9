"""Runs inside the sandbox (copied there as child.py): call one exercise on its cases.

Reads job.json and inputs.npz from the current folder, writes out/results.npz (arrays
only) and out/status.json ({case: "ok" or the error}). Nothing here is trusted by the
grader: it compares the arrays itself, and a missing output counts as a failure.
Only the standard library and numpy are imported before the student's code.
"""

import importlib
import importlib.machinery
import json
import sys
import traceback
import types
from pathlib import Path

import numpy as np

HERE = Path.cwd()


def _drop_editable_finders():
    # the instructor's editable install must not supply bn_helpers: ours is in pkg/
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path_hooks[:] = [h for h in sys.path_hooks if "editable" not in repr(h).lower()]
    sys.path[:] = [p for p in sys.path if p and "editable" not in p]
    sys.path.insert(0, str(HERE / "pkg"))


class _Blocked:
    """torch & co for a numpy exercise: importing works (a module-level import does
    not break the other exercises), using it raises. Under bwrap the real torch is
    hidden from the sandbox as well, so removing this finder gains nothing."""

    def __init__(self, roots):
        self.roots = set(roots)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in self.roots:
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        module = _Unavailable(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        return None


class _Unavailable(types.ModuleType):
    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(f"{self.__name__}.{attr}: torch is not available in this "
                          "exercise: derive it and write it in numpy")


def _arg(spec, case, arrays):
    if "a" in spec:
        return arrays[f"{case}/{spec['a']}"].copy()
    if "rng" in spec:
        return np.random.default_rng(spec["rng"])
    return spec["v"]


def _as_array(value):
    if hasattr(value, "detach"):  # a torch tensor from a notebook exercise
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"returned {type(value).__name__}, not numbers")
    return arr


def _outputs(result, names):
    if len(names) == 1:
        result = (result,)
    if not isinstance(result, (tuple, list)) or len(result) != len(names):
        raise TypeError(
            f"expected {len(names)} return values ({', '.join(names)}), "
            f"got {type(result).__name__}"
        )
    return dict(zip(names, result))


def _layer(module, case, spec, arrays):
    layer = getattr(module, spec["cls"])(
        spec["features"], eps=spec["eps"], momentum=spec["momentum"]
    )
    got = {}
    for i in range(spec["train_steps"]):
        got[f"train{i}"] = layer.forward(arrays[f"{case}/x{i}"].copy())
        got[f"running_mean{i}"] = np.array(layer.running_mean, copy=True)
        got[f"running_var{i}"] = np.array(layer.running_var, copy=True)
    layer.eval()
    for i in range(spec["eval_steps"]):
        got[f"eval{i}"] = layer.forward(arrays[f"{case}/e{i}"].copy())
    return got


def _call(job, module, func, case, arrays):
    spec = case["spec"]
    recipe = job["recipe"]
    if recipe == "layer":
        return _layer(module, case["name"], spec, arrays)
    args = [_arg(a, case["name"], arrays) for a in spec["args"]]
    if recipe in ("backward", "spatial_backward"):
        forward = getattr(module, spec["forward"])
        try:
            _, cache = forward(*args[:4])
        except Exception as err:  # noqa: BLE001
            raise RuntimeError(
                f"your {spec['forward']}, which makes the cache, failed: "
                f"{_message(err)}") from None
        result = func(args[4], cache)
    else:
        result = func(*args)
    return _outputs(result, job["outputs"])


def main():
    job = json.loads((HERE / "job.json").read_text())
    arrays = dict(np.load(HERE / "inputs.npz", allow_pickle=False))
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    status, results = {}, {}
    _drop_editable_finders()
    if job.get("block"):
        sys.meta_path.insert(0, _Blocked(job["block"]))
    module = func = None
    try:
        if job["kind"] == "package":
            module = importlib.import_module("bn_helpers.batchnorm")
            func = module
            for part in job["function"].split("."):
                func = getattr(func, part)
        else:
            from bn_helpers import batchnorm as module

            namespace = {"__name__": "__submission__"}
            exec(compile(job["preamble"], "preamble", "exec"), namespace)
            source = (HERE / "submission.py").read_text()
            exec(compile(source, job["where"], "exec"), namespace)
            func = namespace[job["function"]]
    except BaseException as err:  # noqa: BLE001 - the student's code may raise anything
        msg = _message(err)
        status = {case["name"]: f"could not load your code: {msg}"
                  for case in job["cases"]}
    else:
        for case in job["cases"]:
            try:
                got = _call(job, module, func, case, arrays)
                for key, value in got.items():
                    if key.startswith("_"):  # returned but not graded (e.g. cache)
                        continue
                    results[f"{case['name']}/{key}"] = (
                        np.zeros(0) if value is None else _as_array(value))
                    if value is None:
                        results[f"{case['name']}/{key}#none"] = np.zeros(0)
                status[case["name"]] = "ok"
            except BaseException as err:  # noqa: BLE001
                status[case["name"]] = _message(err)
    np.savez(out / "results.npz", **results)
    (out / "status.json").write_text(json.dumps(status))


def _message(err):
    frames = traceback.extract_tb(err.__traceback__)
    where = ""
    for frame in reversed(frames):
        if frame.filename.endswith("batchnorm.py") or frame.filename.startswith(
                "notebook"):
            where = f" (line {frame.lineno}: {frame.line})"
            break
    return f"{type(err).__name__}: {err}"[:400] + where[:200]


if __name__ == "__main__":
    main()
