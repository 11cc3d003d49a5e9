"""Read the submitted source: does a numpy exercise reach for torch or the reference?

``findings(source, qualname)`` returns ``[(line, text, why)]`` for the graded function
and every function of the same source it calls (by name, transitively): imports of
torch/autograd-style libraries, names bound to them at module level, dynamic imports
and code execution (``__import__``, ``importlib``, ``exec``, ``eval``, ``compile``,
``sys.modules``), and an import of ``bn_helpers.batchnorm`` from inside the learner's
own module (that can only be a way to the complete edition's reference). A heuristic:
an obfuscated call can evade it, which is why the sandbox also hides torch from numpy
exercises (instructor/README.md, "What is protected").
"""

from __future__ import annotations

import ast

__all__ = ["findings"]

FORBIDDEN_ROOTS = {"torch", "functorch", "jax", "autograd", "tensorflow", "tinygrad",
                   "mxnet", "importlib", "ctypes"}
DYNAMIC = {"__import__", "exec", "eval", "compile", "globals", "__builtins__",
           "breakpoint"}


def _root(module: str | None) -> str:
    return (module or "").split(".")[0]


def _import_hits(node, in_package: bool):
    """Why an Import/ImportFrom node is forbidden, or None."""
    names = ([a.name for a in node.names] if isinstance(node, ast.Import)
             else [node.module or ""])
    for name in names:
        if _root(name) in FORBIDDEN_ROOTS:
            return f"imports {name}"
        if in_package and (name == "bn_helpers.batchnorm" or (
                name == "bn_helpers" and isinstance(node, ast.ImportFrom)
                and any(a.name == "batchnorm" for a in node.names))):
            return "imports bn_helpers.batchnorm from inside bn_helpers/batchnorm.py"
    return None


def _module_aliases(tree) -> set[str]:
    """Module-level names bound to forbidden modules (imports or dynamic calls)."""
    bad: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and _import_hits(node, True):
            bad |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            used = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
            if used & (bad | DYNAMIC | FORBIDDEN_ROOTS):
                targets = (node.targets if isinstance(node, ast.Assign)
                           else [node.target])
                bad |= {n.id for t in targets for n in ast.walk(t)
                        if isinstance(n, ast.Name)}
    return bad


def _defs(tree):
    """{qualified name: node} of functions, 'Class.method' for methods."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out[f"{node.name}.{item.name}"] = item
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = node
    return out


def _reachable(defs, start: str):
    seen, todo = [], [start]
    cls = start.split(".")[0] if "." in start else None
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.append(name)
        for node in ast.walk(defs[name]):
            if isinstance(node, ast.Name) and node.id in defs:
                todo.append(node.id)
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id in ("self", "cls") and cls):
                todo.append(f"{cls}.{node.attr}")
    return [defs[n] for n in seen]


def findings(source: str, qualname: str, *, in_package: bool = True,
             extra_aliases: set[str] = frozenset(),
             first_line: int = 1) -> list[tuple[int, str, str]]:
    """[(line, code, why)] for `qualname` in `source` and what it calls.

    extra_aliases: names bound to torch elsewhere (a notebook's setup cell imports
    torch and F); `first_line` shifts line numbers.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # the sandbox reports the syntax error itself
    lines = source.splitlines()
    aliases = _module_aliases(tree) | set(extra_aliases)
    hits = []

    def add(node, why):
        text = lines[node.lineno - 1].strip() if node.lineno <= len(lines) else ""
        hits.append((node.lineno + first_line - 1, text[:120], why))

    for node in tree.body:  # dynamic code at module level taints everything
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) \
                    and sub.func.id in DYNAMIC and not isinstance(
                        node, (ast.FunctionDef, ast.ClassDef)):
                add(sub, f"runs {sub.func.id}() at module level")
    for func in _reachable(_defs(tree), qualname):
        for node in ast.walk(func):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                why = _import_hits(node, in_package)
                if why:
                    add(node, why)
            elif isinstance(node, ast.Name) and (node.id in aliases
                                                 or node.id in DYNAMIC):
                add(node, f"uses {node.id}")
            elif isinstance(node, ast.Attribute) and node.attr == "modules" and \
                    isinstance(node.value, ast.Name) and node.value.id == "sys":
                add(node, "uses sys.modules")
    unique = {(ln, why): (ln, text, why) for ln, text, why in hits}
    return sorted(unique.values())
