"""The guard half of the grader's code inside a submission's kernel: the snapshot and the audit hook.

Like :mod:`._kernel_side`, this file is never imported in the kernel: the grader executes its
source, then ``_kernel_side``'s, in one fresh module (so both share ``_S``), before the
learner's first cell.

- :func:`verify` tells which module attributes (torch, numpy, builtins, json, ...,
  ``course_utils``), classes' methods and ``course_utils`` function code objects were replaced
  since the snapshot; a library's own wrapper of its function (``functools.wraps`` chain,
  code in an installed library) is not a replacement.
- :func:`_audit` is a ``sys.addaudithook`` hook: it refuses opening files for writing,
  removing, renaming, ``chmod``... anything outside the sandbox folder, starting processes
  and signalling other processes. Python cannot remove an audit hook; C code (``ctypes``)
  can still go around it.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading

_CRITICAL_MODULES = (
    "builtins", "json", "json.encoder", "importlib", "importlib.util", "hashlib", "contextlib", "functools",
    "inspect", "io", "math", "itertools", "operator", "traceback", "re", "dataclasses", "numbers", "typing",
    "numpy", "torch", "torch.nn", "torch.nn.functional", "torch.nn.modules.module", "torch.linalg", "torch.autograd",
    "torch.random", "torch.optim", "torch.optim.adam", "torch.optim.optimizer", "torch.nn.utils",
)
#: builtins that IPython rebinds around every cell (or that hold display results)
_VOLATILE_BUILTINS = frozenset({"exit", "quit", "get_ipython", "display", "help", "copyright", "credits", "license",
                                "input", "raw_input"})  # ipykernel binds input() to each request
#: torch's own recurrent cells: a learner's cell must not hand the step to them
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {  # audit event -> positions of (path, dir_fd) pairs that it writes
    "os.remove": ((0, 1),), "os.rmdir": ((0, 1),), "os.mkdir": ((0, 2),), "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),), "os.utime": ((0, 3),), "os.truncate": ((0, None),), "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),), "os.rename": ((0, 2), (1, 3)), "os.link": ((1, 3),),
    "os.symlink": ((1, 2),), "shutil.rmtree": ((0, 1),), "sqlite3.connect": ((0, None),),
}
_PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                             "os.forkpty", "pty.spawn"})

_S: dict = {}  # the state: filled by install()
_guard = threading.local()


def _course_modules() -> list[str]:
    return sorted(n for n in sys.modules if n == "course_utils" or n.startswith("course_utils."))


def _snapshot() -> dict:
    """What must not change: module attributes (by identity) and the code of course_utils' functions."""
    import torch
    snap = {"modules": {}, "dicts": {}, "code": {}}
    names = [n for n in _CRITICAL_MODULES if n in sys.modules] + [n for n in _course_modules()
                                                                   if not n.startswith("course_utils.grading")]
    for name in names:
        module = sys.modules[name]
        snap["modules"][name] = module
        snap["dicts"][name] = {k: v for k, v in vars(module).items() if _watched(name, k)}
        if name.startswith("course_utils"):
            for k, v in vars(module).items():
                if inspect.isfunction(v) and v.__module__ == name:
                    snap["code"][f"{name}.{k}"] = (v, v.__code__, v.__defaults__, v.__kwdefaults__)
                elif inspect.isclass(v) and v.__module__ == name:
                    snap["dicts"][f"{name}.{k}"] = dict(vars(v))
                    snap.setdefault("classes", {})[f"{name}.{k}"] = v
    for label, cls in (("torch.Tensor", torch.Tensor), ("torch._C.TensorBase", torch._C.TensorBase),
                       ("torch.nn.Module", torch.nn.Module), ("torch.optim.Adam", torch.optim.Adam),
                       ("torch.optim.Optimizer", torch.optim.Optimizer)):
        snap["dicts"][label] = dict(vars(cls))
        snap.setdefault("classes", {})[label] = cls
    return snap


def _watched(module: str, key: str) -> bool:
    if module != "builtins":
        return True
    return key not in _VOLATILE_BUILTINS and (not key.startswith("_") or key in ("__import__", "__build_class__"))


def verify() -> list[str]:
    """Names that the notebook replaced since :func:`install` (empty when nothing changed)."""
    snap, changed = _S["snapshot"], []
    for name, module in snap["modules"].items():
        if sys.modules.get(name) is not module:
            changed.append(f"sys.modules[{name!r}]")
    for name, before in snap["dicts"].items():
        owner = snap.get("classes", {}).get(name) or snap["modules"].get(name)
        now = vars(owner)
        changed += [f"{name}.{k}" for k, v in before.items()
                    if k not in now or (now[k] is not v and not _library_wrapper(v, now[k]))]
    for name, (fn, code, defaults, kwdefaults) in snap["code"].items():
        if fn.__code__ is not code or fn.__defaults__ is not defaults or fn.__kwdefaults__ is not kwdefaults:
            changed.append(f"{name}.__code__")
    return sorted(set(changed))


def _library_wrapper(old, new) -> bool:
    """True when ``new`` is a library's own wrapper of ``old`` (``functools.wraps`` chain, code in a library file).

    torch rebinds some of its functions on first use: ``torch._dynamo`` wraps ``torch.manual_seed``,
    the first optimizer of a class wraps its ``step`` in a profiling hook. A notebook's patch is
    code from a cell (or from a file in the sandbox), never from an installed library.
    """
    for _ in range(5):
        code = getattr(new, "__code__", None)
        if code is None or not _in_library(code.co_filename):
            return False
        new = getattr(new, "__wrapped__", None)
        if new is old:
            return True
    return False


def _in_library(filename: str) -> bool:
    if "library_dirs" not in _S:
        import sysconfig
        paths = sysconfig.get_paths()
        _S["library_dirs"] = tuple(os.path.realpath(paths[k]) + os.sep for k in ("stdlib", "purelib", "platlib"))
    return os.path.realpath(filename).startswith(_S["library_dirs"])


# --------------------------------------------------------- the audit hook
def _resolve(path, dir_fd=None) -> str | None:
    if isinstance(path, int):  # an already open file descriptor
        return None
    path = os.fsdecode(path)
    if dir_fd is not None and not os.path.isabs(path):
        try:
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        except OSError:
            return "/"  # cannot tell where: treated as outside the sandbox
    return os.path.realpath(path)


def _allowed(path: str | None) -> bool:
    if path is None or path == os.devnull:
        return True
    root = _S["sandbox"]
    return path == root or path.startswith(root + os.sep)


def _refuse(what: str):
    raise PermissionError(f"the grader does not allow this: {what} (only the notebook's own folder is writable)")


def _audit(event: str, args: tuple) -> None:
    if event != "open" and event not in _PATH_EVENTS and event not in _PROCESS_EVENTS \
            and event not in ("os.kill", "os.killpg"):
        return
    if getattr(_guard, "busy", False):
        return
    _guard.busy = True
    try:
        _check_event(event, args)
    finally:
        _guard.busy = False


def _check_event(event: str, args: tuple) -> None:
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                 (mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writes and path is not None and not _allowed(_resolve(path)):
            _refuse(f"writing {os.fsdecode(path)!s}")
    elif event in _PATH_EVENTS:
        for path_at, fd_at in _PATH_EVENTS[event]:
            path = args[path_at]
            dir_fd = args[fd_at] if fd_at is not None and fd_at < len(args) else None
            if path is not None and not _allowed(_resolve(path, dir_fd if isinstance(dir_fd, int) else None)):
                _refuse(f"{event} on {os.fsdecode(path) if not isinstance(path, int) else path}")
    elif event in _PROCESS_EVENTS:
        _refuse(f"starting a process ({event})")
    elif event == "os.kill" and args[0] not in (0, _S["own_pid"]):
        _refuse(f"sending a signal to process {args[0]}")
    elif event == "os.killpg" and args[0] not in (0, _S["own_pgid"]):
        _refuse(f"sending a signal to process group {args[0]}")
