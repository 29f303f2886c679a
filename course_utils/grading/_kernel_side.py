"""The grader's code inside a submission's sandboxed kernel: call the learner's functions, send back plain values.

Never imported there: after the learner's cells have run, the grader executes the source of
:mod:`._codec` and of this file in one fresh module. It judges nothing. For each request it
decodes the arguments the grader generated, calls the learner's function (with a profiler that
records calls of the reference, by source file and by torch's builtin names), and prints one
line ``<nonce><json>`` holding the result, the arguments after the call (in-place changes), the
recorded calls and how much the function printed. Everything here runs in the learner's
process and can be tampered with; the grader trusts none of it beyond "these are the values":
the comparison, the diagnosis and the points are the grader's own (see :mod:`._remote`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import threading
import traceback

_STATE: dict = {}
_KEEP = 300  # characters of an exception message that go back


class _Sink:
    def __init__(self):
        self.count = 0

    def write(self, text):
        self.count += len(text)
        return len(text)

    def flush(self):
        pass


def _where(exc: BaseException) -> str:
    """The learner's own line: the last frame in a notebook cell, else the last frame outside the libraries."""
    frames = traceback.extract_tb(exc.__traceback__)[1:]
    cells = [f for f in frames if "ipykernel_" in f.filename or f.filename.startswith("<ipython-input")]
    frame = cells[-1] if cells else None
    if frame is None:
        return ""
    text = f"line {frame.lineno} of your cell, in `{frame.name}`"
    if frame.line:
        text += f": `{frame.line.strip()[:120]}`"
    return text[:_KEEP]


def _profile(files: frozenset, names: frozenset, hits: set):
    def profile(frame, event, arg):
        if event == "call":
            code = frame.f_code
            if code.co_filename in files:
                hits.add(code.co_filename)
            elif f"{code.co_filename}:{code.co_firstlineno}" in files:
                hits.add(f"{code.co_filename}:{code.co_firstlineno}")
        elif event == "c_call" and getattr(arg, "__name__", None) in names:
            hits.add(f"torch.{arg.__name__}")
    return profile


def _reply(nonce: str, payload: dict) -> None:
    out = _STATE["stdout"]
    out.write(nonce + json.dumps(payload) + "\n")
    out.flush()


def install(config: dict) -> None:
    _STATE.update(config=config, stdout=sys.stdout, ns=get_ipython().user_ns, models={})  # noqa: F821


def _run(fn, args, kwargs, files, names):
    hits: set = set()
    sink = _Sink()
    profile = _profile(frozenset(files), frozenset(names), hits)
    result = {"hits": hits}
    previous = sys.getprofile()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            sys.setprofile(profile)
            threading.setprofile(profile)
            try:
                result["value"] = fn(*args, **kwargs)
            finally:
                if sys.getprofile() is not profile:
                    hits.add("sys.setprofile (the tripwire was switched off)")
                sys.setprofile(previous)
                threading.setprofile(None)
    except NotImplementedError:
        result["raised"] = ["NotImplementedError", "", ""]
    except BaseException as exc:  # noqa: BLE001  (the learner's exception, described and sent back)
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["raised"] = [type(exc).__name__[:80], str(exc).split("\n")[0][:_KEEP], _where(exc)]
    result["printed"] = sink.count
    return result


def call(nonce: str, request: str) -> None:
    """Run ``function(*args, **kwargs)`` of the notebook's namespace for the grader; reply on one line."""
    req = json.loads(base64.b64decode(request))
    fn = _STATE["ns"].get(req["function"], _STATE)
    if fn is _STATE:
        _reply(nonce, {"missing": True})
        return
    attached: list = []
    args = decode(req["args"], allow_pickle=True, attach=attached)  # noqa: F821  (from _codec, executed alongside)
    kwargs = decode(req["kwargs"], allow_pickle=True, attach=attached)  # noqa: F821
    res = _run(fn, args, kwargs, req["files"], req["names"])
    reply = {"hits": sorted(res["hits"]), "printed": res["printed"],
             "args_after": encode(list(args)), "kwargs_after": encode(kwargs),  # noqa: F821
             "reached_attached": any(leaf.grad is not None for leaf in attached)}
    if "raised" in res:
        reply["raised"] = res["raised"]
    else:
        reply["result"] = encode(res["value"])  # noqa: F821
    _reply(nonce, reply)


def model(nonce: str, request: str) -> None:
    """A step of the model exercise (build, forward, train, predict, ablate), run by the check's own code."""
    req = json.loads(base64.b64decode(request))
    import course_utils.checks.adding as adding  # the read-only copy of the course in the sandbox

    op, models = req["op"], _STATE["models"]
    payload = decode(req.get("payload", ["none"]), allow_pickle=True)  # noqa: F821
    if op == "build":
        fn = _STATE["ns"].get(req["function"], _STATE)
        if fn is _STATE:
            _reply(nonce, {"missing": True})
            return
        res = _run(fn, (), {}, req["files"], req["names"])
        reply = {"hits": sorted(res["hits"]), "printed": res["printed"]}
        if "raised" in res:
            reply["raised"] = res["raised"]
        else:
            models["model"] = res["value"]
            reply["result"] = encode(adding.describe_model(res["value"]))  # noqa: F821
        _reply(nonce, reply)
        return
    target = models.get("model")
    steps = {"forward": lambda: adding.model_forward(target, payload),
             "train": lambda: adding.train_model(target, **payload),
             "predict": lambda: adding.model_predict(target, payload),
             "ablate": lambda: adding.ablate_recurrent(target)}
    res = _run(steps[op], (), {}, req["files"], req["names"])
    reply = {"hits": sorted(res["hits"]), "printed": res["printed"]}
    if "raised" in res:
        reply["raised"] = res["raised"]
    else:
        reply["result"] = encode(res["value"])  # noqa: F821
    _reply(nonce, reply)
