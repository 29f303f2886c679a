"""Values between the grader and a sandboxed kernel: plain JSON, tensors as raw little-endian bytes.

Both sides use this file: the grader imports it; in the kernel the grader executes its source
(with :mod:`._kernel_side`) after the learner's cells have run. Only plain data crosses:
``None``, booleans, integers, floats, strings, tuples, lists, dicts with string keys, tensors
(rebuilt by the receiver from their bytes: never a subclass, never a pickled object), random
generators (their state) and modules (grader to kernel: ``torch.save`` bytes of a module the
grader built; kernel to grader: parameters and their gradients as tensors). Anything else is
described by its type name only. :func:`decode` refuses what it does not expect and bounds the
size, depth and count of what it rebuilds.
"""

from __future__ import annotations

import base64
import io
import math

import torch

MAX_BYTES = 64 * 2**20  # all tensors of one message together
MAX_ITEMS = 100_000
MAX_DEPTH = 12
MAX_TEXT = 100_000
_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "int64": torch.int64,
           "int32": torch.int32, "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
           "complex64": torch.complex64, "complex128": torch.complex128}
_NAMES = {v: k for k, v in _DTYPES.items()}


class DecodeError(ValueError):
    """A message that is not what the protocol allows (too big, too deep, unknown tag)."""


def _tensor(t) -> list:
    plain = torch.Tensor.as_subclass(t.detach(), torch.Tensor)
    if plain.dtype not in _NAMES:
        return ["other", f"Tensor of dtype {plain.dtype}"]
    # "attached": the tensor hangs on an autograd graph (a state from an earlier chunk); the kernel gives it one
    attached = "attached" if (t.requires_grad and t.grad_fn is not None) else ""
    return ["tensor", _NAMES[plain.dtype], list(plain.shape), _bytes(plain.cpu()), str(plain.device), attached]


def _bytes(t) -> str:
    return base64.b64encode(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes()).decode("ascii") \
        if t.numel() else ""


def encode(value, depth: int = 0, *, modules: str = "state"):
    """``value`` as JSON-able nested lists; ``modules``: ``"pickle"`` (grader to kernel) or ``"state"``."""
    if depth > MAX_DEPTH:
        return ["other", "too deeply nested"]
    if value is None:
        return ["none"]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)] if abs(value) < 2**63 else ["other", "int (too large)"]
    if isinstance(value, float):
        return ["float", repr(float(value))]
    if isinstance(value, str):
        return ["str", value[:MAX_TEXT]]
    if isinstance(value, torch.Tensor):
        return _tensor(value)
    if isinstance(value, (tuple, list)):
        tag = "tuple" if isinstance(value, tuple) else "list"
        return [tag, [encode(v, depth + 1, modules=modules) for v in value[:MAX_ITEMS]]]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return ["dict", [[k, encode(v, depth + 1, modules=modules)] for k, v in list(value.items())[:MAX_ITEMS]]]
        return ["other", "dict with non-string keys"]
    if isinstance(value, torch.Generator):
        return ["generator", _bytes(value.get_state())]
    if isinstance(value, torch.nn.Module):
        if modules == "pickle":
            buffer = io.BytesIO()
            torch.save(value, buffer)
            return ["module", base64.b64encode(buffer.getvalue()).decode("ascii")]
        params = [[name, _tensor(p), _tensor(p.grad) if p.grad is not None else ["none"]]
                  for name, p in value.named_parameters()]
        return ["module_state", params, bool(value.training)]
    if isinstance(value, torch.dtype):
        return ["dtype", _NAMES.get(value, str(value))]
    return ["other", type(value).__name__[:100]]


class _Budget:
    def __init__(self, attach: list | None = None):
        self.bytes = 0
        self.items = 0
        self.attach = attach  # where "attached" tensors' leaves go (in the kernel); None: plain tensors

    def spend(self, nbytes: int = 0) -> None:
        self.bytes += nbytes
        self.items += 1
        if self.bytes > MAX_BYTES or self.items > MAX_ITEMS:
            raise DecodeError(f"a message over the limit ({MAX_BYTES} bytes of tensors, {MAX_ITEMS} items)")


def _decode_tensor(node: list, budget: _Budget):
    _, dtype, shape, data = node[:4]
    if dtype not in _DTYPES or not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise DecodeError(f"a tensor with dtype {dtype!r} and shape {shape!r}")
    if not isinstance(data, str):
        raise DecodeError("tensor data that is not text")
    raw = base64.b64decode(data, validate=True) if data else b""
    budget.spend(len(raw))
    count = math.prod(shape)
    itemsize = torch.empty((), dtype=_DTYPES[dtype]).element_size()
    if len(raw) != count * itemsize:
        raise DecodeError(f"a tensor of shape {tuple(shape)} and dtype {dtype} with {len(raw)} bytes")
    if not raw:
        value = torch.empty(shape, dtype=_DTYPES[dtype])
    else:
        value = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(_DTYPES[dtype]).reshape(shape).clone()
    if len(node) > 5 and node[5] == "attached" and budget.attach is not None and value.is_floating_point():
        leaf = value.requires_grad_(True)
        budget.attach.append(leaf)
        return leaf * 1  # a non-leaf on a graph: a backward that is not stopped by .detach() reaches ``leaf``
    return value


class Opaque:
    """A value the other side could not send (its type name is all that came)."""

    def __init__(self, description: str):
        self.description = self._remote_type = description

    def __repr__(self) -> str:
        return f"<{self.description}>"


class ModuleState:
    """What came back of a module: its parameters (name -> tensor) and their gradients (or None)."""

    def __init__(self, params: dict, grads: dict, training: bool):
        self.params, self.grads, self.training = params, grads, training


def decode(node, budget: _Budget | None = None, depth: int = 0, *, allow_pickle: bool = False,
           attach: list | None = None):
    """Rebuild a value from :func:`encode`'s form; :class:`DecodeError` for anything else.

    ``attach``: a list that receives the leaves of tensors sent as attached to a graph (kernel side).
    """
    budget = budget or _Budget(attach)
    if depth > MAX_DEPTH + 1:
        raise DecodeError("a message nested too deeply")
    if not isinstance(node, list) or not node or not isinstance(node[0], str):
        raise DecodeError("a value without a tag")
    tag = node[0]
    budget.spend()
    if tag == "none":
        return None
    if tag == "bool" and isinstance(node[1], bool):
        return node[1]
    if tag == "int" and isinstance(node[1], str) and len(node[1]) < 25:
        return int(node[1])
    if tag == "float" and isinstance(node[1], str) and len(node[1]) < 40:
        return float(node[1])
    if tag == "str" and isinstance(node[1], str):
        return node[1][:MAX_TEXT]
    if tag == "tensor" and len(node) >= 4:
        return _decode_tensor(node, budget)
    if tag in ("tuple", "list") and isinstance(node[1], list):
        items = [decode(v, budget, depth + 1, allow_pickle=allow_pickle) for v in node[1]]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict" and isinstance(node[1], list):
        out = {}
        for pair in node[1]:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise DecodeError("a dict entry without a string key")
            out[pair[0][:200]] = decode(pair[1], budget, depth + 1, allow_pickle=allow_pickle)
        return out
    if tag == "generator" and isinstance(node[1], str):
        raw = base64.b64decode(node[1], validate=True)
        budget.spend(len(raw))
        gen = torch.Generator()
        gen.set_state(torch.frombuffer(bytearray(raw), dtype=torch.uint8).clone())
        return gen
    if tag == "module" and allow_pickle and isinstance(node[1], str):
        return torch.load(io.BytesIO(base64.b64decode(node[1])), weights_only=False)
    if tag == "module_state" and isinstance(node[1], list):
        params, grads = {}, {}
        for entry in node[1]:
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
                raise DecodeError("a module parameter entry")
            params[entry[0]] = decode(entry[1], budget, depth + 1)
            grads[entry[0]] = decode(entry[2], budget, depth + 1)
        return ModuleState(params, grads, bool(node[2]) if len(node) > 2 else True)
    if tag == "dtype" and isinstance(node[1], str):
        return _DTYPES.get(node[1], Opaque(f"dtype {node[1][:40]}"))
    if tag == "other" and isinstance(node[1], str):
        return Opaque(node[1][:100])
    raise DecodeError(f"an unexpected tag {tag[:40]!r}")
