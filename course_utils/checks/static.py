"""Does the learner's function hand its work to the reference? Read from the notebook's source, nothing is run.

:func:`reference_use` parses the notebook's code cells, starts at the ``def`` of the exercise's
function and follows every function and class of the notebook that it reaches by name. It
reports what resolves (through the notebook's imports and aliases) to a name the exercise
forbids (the course's reference, torch's own recurrent cells: :mod:`.registry`), and the
constructs that could reach anything without naming it: ``exec``, ``eval``, ``compile``,
``__import__``, ``importlib``, ``getattr``/``setattr`` with a computed name, ``globals()``,
``vars()``, ``sys.modules``, ``__dict__``/``__globals__``/``__code__``/``__builtins__``,
``open`` and other file, process or interpreter access, and relative imports (``from .functional
import …`` reaches the reference once the notebook sets ``__package__``). The notebook check (in the learner's
process) and the batch grader (on the submitted file) use the same function, so both give the
same verdict.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Finding", "reference_use", "DYNAMIC_CALLS"]

#: calls that can reach any object without naming it, or read files, start processes
DYNAMIC_CALLS = {
    "exec": "runs code from a string", "eval": "runs code from a string", "compile": "compiles code from a string",
    "__import__": "imports a module by a computed name", "globals": "reads the notebook's globals by name",
    "vars": "reads an object's attributes by name", "locals": "reads variables by name",
    "open": "reads a file", "breakpoint": "starts the debugger", "input": "reads input",
}
_DYNAMIC_ATTRIBUTES = {
    "__dict__": "reads an object's attributes by name", "__globals__": "reads a function's globals",
    "__code__": "reads or replaces a function's code", "__builtins__": "reaches the built-ins by name",
    "__closure__": "reads a function's closure", "__subclasses__": "reaches classes by introspection",
    "__getattribute__": "reads attributes by a computed name", "__class__": "reaches classes by introspection",
    "__wrapped__": "reaches a wrapped function", "__self__": "reaches a bound object",
    "f_globals": "reads a frame's globals", "f_back": "walks the call stack", "gi_frame": "reads a frame",
}
_DYNAMIC_MODULES = {
    "importlib": "imports modules by a computed name", "sys": "reaches the interpreter (sys.modules, frames)",
    "inspect": "introspects the interpreter", "ctypes": "calls C directly", "gc": "walks every live object",
    "os": "reaches the operating system", "subprocess": "starts processes", "pickle": "loads objects from bytes",
    "marshal": "loads code from bytes", "types": "builds functions from code objects", "builtins": "reaches the "
    "built-ins by name", "pathlib": "reads files", "io": "reads files", "shutil": "reaches files",
    "runpy": "runs modules", "code": "runs code from strings", "codeop": "compiles code from strings",
    "threading": "runs code outside the call", "multiprocessing": "starts processes", "socket": "opens sockets",
}

#: a relative import is resolved against ``__package__``, which a notebook can set to the course's package
_RELATIVE = "a relative import: it reaches whatever package `__package__` names"
_MODULE_IDENTITY = {"__package__": "sets the package relative imports resolve in",
                    "__spec__": "sets the module's identity for imports",
                    "__loader__": "sets the module's loader"}


@dataclass(frozen=True)
class Finding:
    """One reason to think the function uses the reference: what it reaches, where (cell, line)."""

    what: str
    why: str
    cell: int  # 0-based index into the sources given
    line: int

    def text(self) -> str:
        return f"`{self.what}` ({self.why}), line {self.line} of cell {self.cell + 1}"


_MAGIC = re.compile(r"^(\s*)([%!].*)$")


def _parse(source: str) -> ast.Module | None:
    """A cell's syntax tree; IPython magics and shell lines become ``pass``; None if it does not parse."""
    lines = [(_MAGIC.sub(r"\1pass", line) if _MAGIC.match(line) else line) for line in source.split("\n")]
    try:
        return ast.parse("\n".join(lines))
    except (SyntaxError, ValueError):
        return None


def _dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"] (also through a constant-string getattr), else None."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return base + [node.attr] if base else None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
        base = _dotted(node.args[0])
        return base + [node.args[1].value] if base else None
    return None


class _Notebook:
    """What the notebook's top level defines: functions, classes, import aliases, simple aliases."""

    def __init__(self, trees: list[ast.Module | None]):
        self.functions: dict[str, list[tuple[int, ast.AST]]] = {}
        self.aliases: dict[str, str] = {}
        self.alias_at: dict[str, tuple[int, int]] = {}  # where each alias is made: (cell, line)
        for index, tree in enumerate(trees):
            if tree is None:
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    self._imports(node, index)
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.functions.setdefault(node.name, []).append((index, node))
                elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    path = _dotted(node.value)
                    if path:
                        self._alias(node.targets[0].id, ".".join(self.resolve(path)), index, node.lineno)

    def _alias(self, name: str, target: str, cell: int, line: int) -> None:
        if name not in self.aliases:
            self.aliases[name] = target
            self.alias_at[name] = (cell, line)

    def _imports(self, node, cell: int) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    self._alias(a.asname, a.name, cell, node.lineno)
                else:
                    self._alias(a.name.split(".")[0], a.name.split(".")[0], cell, node.lineno)
        else:  # ``from .functional import rnn_cell`` resolves to ".functional.rnn_cell": relative, flagged
            module = "." * node.level + (node.module or "")
            for a in node.names:
                target = f"{module}.{a.name}" if node.module else f"{module}{a.name}"
                self._alias(a.asname or a.name, target, cell, node.lineno)

    def resolve(self, path: list[str]) -> list[str]:
        head = self.aliases.get(path[0])
        return (head.split(".") + path[1:]) if head else path


def _matches(dotted: str, prefixes: Sequence[str]) -> str | None:
    for p in prefixes:
        if dotted == p or dotted.startswith(p + "."):
            return p
    return None


def reference_use(sources: Sequence[str], function: str, forbidden: Sequence[str], *,
                  defining_cell: int | None = None) -> list[Finding]:
    """Findings for ``function`` (the last definition, or the one in ``defining_cell``); [] when it is clean.

    ``sources``: the code cells of the notebook, in order. ``forbidden``: dotted prefixes
    (``"course_utils.functional"``, ``"torch.nn.LSTMCell"``).
    """
    trees = [_parse(s) for s in sources]
    nb = _Notebook(trees)
    defs = nb.functions.get(function, [])
    if defining_cell is not None:
        defs = [d for d in defs if d[0] == defining_cell] or defs
    if not defs:  # ``rnn_cell = ref.rnn_cell``: the name itself is an alias
        target = nb.aliases.get(function)
        cell, line = nb.alias_at.get(function, (0, 0))
        if target and _matches(target, forbidden):
            return [Finding(target, "the reference, under the exercise's name", cell, line)]
        if target and target.startswith("."):
            return [Finding(target, _RELATIVE, cell, line)]
        return []
    findings: list[Finding] = []
    todo, seen = [defs[-1]], set()
    while todo:
        cell, node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for sub in ast.walk(node):
            findings += _inspect(sub, cell, nb, forbidden)
            if isinstance(sub, ast.Name) and sub.id in nb.functions and sub.id != function:
                todo += nb.functions[sub.id]
            if isinstance(sub, ast.Name) and sub.id == function and nb.functions.get(function):
                todo += [d for d in nb.functions[function] if d is not defs[-1]]
    out: list[Finding] = []
    for f in findings:  # one finding per place: the longest name (``ref.rnn_cell``, not also ``ref``)
        same = [g for g in findings if (g.cell, g.line) == (f.cell, f.line) and g.why == f.why]
        if any(g.what.startswith(f.what + ".") for g in same) or f in out:
            continue
        out.append(f)
    return sorted(out, key=lambda f: (f.cell, f.line, f.what))


def _inspect(node: ast.AST, cell: int, nb: _Notebook, forbidden: Sequence[str]) -> list[Finding]:
    line = getattr(node, "lineno", 0)
    out = []
    if isinstance(node, (ast.Attribute, ast.Name)) or (isinstance(node, ast.Call) and _dotted(node)):
        path = _dotted(node)
        if path and path[0] not in nb.functions:  # a name the notebook defines itself shadows any import
            full = ".".join(nb.resolve(path))
            hit = _matches(full, forbidden)
            if hit:
                out.append(Finding(full, "the reference", cell, line))
            elif full.startswith("."):
                out.append(Finding(full, _RELATIVE, cell, line))
            root = nb.resolve(path)[0]
            if isinstance(node, ast.Name) and root in _DYNAMIC_MODULES and node.id in nb.aliases:
                out.append(Finding(root, _DYNAMIC_MODULES[root], cell, line))
    if isinstance(node, ast.Name) and node.id in _MODULE_IDENTITY:
        out.append(Finding(node.id, _MODULE_IDENTITY[node.id], cell, line))
    if isinstance(node, ast.Attribute) and node.attr in _DYNAMIC_ATTRIBUTES:
        out.append(Finding(node.attr, _DYNAMIC_ATTRIBUTES[node.attr], cell, line))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name in DYNAMIC_CALLS and name not in nb.functions:
            out.append(Finding(f"{name}()", DYNAMIC_CALLS[name], cell, line))
        if name in ("getattr", "setattr", "delattr", "hasattr") and not (
                len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
            out.append(Finding(f"{name}()", "reaches an attribute by a computed name", cell, line))
    if isinstance(node, ast.ImportFrom) and node.level:
        out.append(Finding("." * node.level + (node.module or ""), _RELATIVE, cell, line))
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [f"{node.module}.{a.name}" for a in node.names] if node.module and not node.level else []
        for n in names:
            hit = _matches(n, forbidden)
            if hit:
                out.append(Finding(n, "the reference", cell, line))
            elif n.split(".")[0] in _DYNAMIC_MODULES:
                out.append(Finding(n, _DYNAMIC_MODULES[n.split(".")[0]], cell, line))
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _matches(node.value, forbidden):
        out.append(Finding(node.value, "the reference, named in a string", cell, line))
    return out
