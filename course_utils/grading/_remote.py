"""The learner's functions as the grader's checks see them: proxies that call into the sandboxed kernel.

A check (``course_utils.checks``) calls the learner's function with tensors it generated from a
seed drawn for this grading run; here that call becomes a request to the kernel, which runs the
learner's code and sends back plain values (:mod:`._codec`). The check then compares them with
the reference and names the mistake in the grader's own process, so nothing the learner's code
does inside its kernel can change a verdict; at most it can change the values it returns.

- Arguments changed in place in the kernel are written back into the grader's own argument
  objects, so the checks' "changed its input in place" test works as in a notebook.
- An exception in the learner's code comes back as its type name, first line (cut) and line, and
  is raised again here as the same built-in type (or :class:`LearnerError`).
- A request that times out, crashes or exhausts the kernel's memory raises :class:`RemoteAbort`,
  a ``BaseException``: no check catches it, the grader turns it into the exercise's status.
- Calls of the reference seen by the kernel's profiler are collected in ``hits``.
"""

from __future__ import annotations

import base64
import builtins
import json
import secrets

import torch

from . import _codec

_KEEP = 300


class RemoteAbort(BaseException):
    """The kernel could not answer (``status``: timeout, crashed, memory, grader_error); ``reason`` says why."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class LearnerError(Exception):
    """An exception of a type that is not a Python built-in, raised by the learner's code in the kernel."""


def _rebuild(name: str, message: str, where: str) -> BaseException:
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)) or name in ("SystemExit", "KeyboardInterrupt"):
        exc: BaseException = LearnerError(f"{name}: {message}" if message else name)
    else:
        try:
            exc = cls(message)
        except Exception:  # noqa: BLE001  (a built-in with a constructor of its own: keep the text)
            exc = LearnerError(f"{name}: {message}")
    exc.remote_where = where[:_KEEP]  # type: ignore[attr-defined]
    return exc


def _write_back(host, after) -> None:
    """Make the grader's argument object look like the kernel's after the call (in-place changes)."""
    if isinstance(host, torch.Tensor) and isinstance(after, torch.Tensor):
        with torch.no_grad():
            if host.shape == after.shape and host.dtype == after.dtype:
                host.copy_(after)
            else:
                host.set_(after.to(host.dtype) if after.dtype != host.dtype else after)
    elif isinstance(host, list) and isinstance(after, list):
        if len(host) == len(after):
            for h, a in zip(host, after):
                _write_back(h, a)
        else:
            host[:] = after
    elif isinstance(host, tuple) and isinstance(after, (tuple, list)) and len(host) == len(after):
        for h, a in zip(host, after):
            _write_back(h, a)
    elif isinstance(host, dict) and isinstance(after, dict):
        for k in list(host):
            if k in after:
                if isinstance(host[k], (torch.Tensor, list, dict, tuple)):
                    _write_back(host[k], after[k])
                else:
                    host[k] = after[k]
    elif isinstance(host, torch.Generator) and isinstance(after, torch.Generator):
        host.set_state(after.get_state())
    elif isinstance(host, torch.nn.Module) and isinstance(after, _codec.ModuleState):
        params = dict(host.named_parameters())
        with torch.no_grad():
            for name, value in after.params.items():
                p = params.get(name)
                if p is not None and isinstance(value, torch.Tensor) and value.shape == p.shape:
                    p.copy_(value.to(p.dtype))
                    grad = after.grads.get(name)
                    p.grad = grad.to(p.dtype) if isinstance(grad, torch.Tensor) and grad.shape == p.shape else None
        host.train(after.training)


class Kernelside:
    """The channel to one kernel's grader module (``handle``), with the time limit of every request."""

    def __init__(self, kernel, handle: str, timeout: float, memory_mb: int, sandbox_text: str = ""):
        self.kernel, self.handle, self.timeout, self.memory_mb = kernel, handle, timeout, memory_mb
        self.sandbox_text = sandbox_text
        self.hits: set[str] = set()
        self.printed = 0

    def request(self, verb: str, payload: dict) -> dict:
        nonce = secrets.token_hex(16)
        blob = base64.b64encode(json.dumps(payload).encode()).decode("ascii")
        out = self.kernel.execute(f"__import__({self.handle!r}).{verb}({nonce!r}, {blob!r})", self.timeout,
                                  store_history=False, keep=96 * 2**20)
        if out.status == "died":
            status = "memory" if out.memory else "crashed"
            raise RemoteAbort(status, f"the kernel died while your function ran (exit code {out.exit_code})"
                              if status == "crashed" else f"your function ran out of memory (limit {self.memory_mb} MB)")
        if out.status in ("timeout", "hung"):
            raise RemoteAbort("timeout", f"your function did not return within {self.timeout:g} s")
        if out.status == "error":
            if out.ename == "MemoryError" or "can't allocate memory" in out.evalue:
                raise RemoteAbort("memory", f"ran out of memory (limit {self.memory_mb} MB)")
            raise RemoteAbort("grader_error", f"the grader's call failed in the kernel: {out.ename}")
        at = out.text.rfind(nonce)
        if at < 0:
            raise RemoteAbort("grader_error", "the kernel sent no answer")
        try:
            reply, _ = json.JSONDecoder().raw_decode(out.text, at + len(nonce))
            assert isinstance(reply, dict)
        except (ValueError, AssertionError):
            raise RemoteAbort("grader_error", "the kernel's answer could not be read") from None
        hits = reply.get("hits", [])
        if isinstance(hits, list):
            self.hits.update(str(h)[:200] for h in hits[:20])
        if isinstance(reply.get("printed"), int):
            self.printed += reply["printed"]
        if reply.get("missing"):
            raise RemoteAbort("missing", "is not defined after running the notebook")
        return reply

    def value(self, reply: dict):
        raised = reply.get("raised")
        if isinstance(raised, list) and len(raised) == 3 and all(isinstance(r, str) for r in raised):
            name, message, where = (r[:_KEEP] for r in raised)
            if name == "NotImplementedError":
                raise NotImplementedError(message)
            raise _rebuild(name, message, where)
        try:
            return _codec.decode(reply.get("result", ["none"]))
        except _codec.DecodeError as exc:
            raise RemoteAbort("wrong", f"the value your function returned could not be read: {exc}") from None


class RemoteFunction:
    """The learner's function ``name`` in the kernel, called like a local function by a check."""

    def __init__(self, side: Kernelside, name: str, files: list[str], names: list[str]):
        self.side, self.name, self.files, self.names = side, name, files, names
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        payload = {"function": self.name, "files": self.files, "names": self.names,
                   "args": _codec.encode(list(args), modules="pickle"),
                   "kwargs": _codec.encode(kwargs, modules="pickle")}
        reply = self.side.request("call", payload)
        try:
            after = _codec.decode(reply.get("args_after", ["list", []]))
            kw_after = _codec.decode(reply.get("kwargs_after", ["dict", []]))
        except _codec.DecodeError:
            after, kw_after = None, None
        if isinstance(after, list) and len(after) == len(args):
            for host, new in zip(args, after):
                _write_back(host, new)
        if isinstance(kw_after, dict):
            _write_back(kwargs, kw_after)
        if reply.get("reached_attached") is True and "raised" not in reply:
            # what a local call does when backward runs into a graph that was already freed
            error = RuntimeError("Trying to backward through the graph a second time: your function's backward "
                                 "reached a tensor it was given that belongs to an earlier graph (not detached)")
            error.remote_where = ""  # type: ignore[attr-defined]
            raise error
        return self.side.value(reply)


class RemoteModelRunner:
    """``build_model`` in the kernel: the adding check's steps (build, forward, train, predict, ablate) run there."""

    def __init__(self, side: Kernelside, name: str, files: list[str], names: list[str]):
        self.side, self.name, self.files, self.names = side, name, files, names

    def _op(self, op: str, payload=None):
        req = {"op": op, "function": self.name, "files": self.files, "names": self.names,
               "payload": _codec.encode(payload)}
        return self.side.value(self.side.request("model", req))

    def build(self):
        return self._op("build")

    def forward(self, x):
        return self._op("forward", x)

    def train(self, **settings):
        return self._op("train", settings)

    def predict(self, x):
        return self._op("predict", x)

    def ablate(self):
        return self._op("ablate")
