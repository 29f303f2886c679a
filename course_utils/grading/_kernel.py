"""One submission's kernel, seen from the grader: start it with limits, run code with a deadline, kill it.

The kernel is ``ipykernel`` of the running interpreter, started inside bubblewrap (see
:mod:`._sandbox`) by a tiny launcher that first lowers its own resource limits (inherited by
anything it starts):

- ``RLIMIT_AS`` = the memory limit: it counts every mapping, shared memory included. (A CUDA
  build of torch reserves tens of GB of address space when it initialises a GPU; the sandbox
  shows no GPU device, so that never happens there.)
- ``RLIMIT_NPROC`` bounds processes and threads, ``RLIMIT_FSIZE`` any file it writes,
  ``RLIMIT_NOFILE`` its open files; no core files.

It talks to the grader over Unix sockets in a folder bound into the sandbox; a cell that runs
past its limit is interrupted with a control message (the kernel signals itself), and killed
(its whole process namespace with it) when that does not help. Outputs are counted but only the
first bytes of each request are kept, so a notebook that prints megabytes does not grow the grader.
"""

from __future__ import annotations

import os
import queue
import secrets
import signal
import site
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from . import _sandbox

_LAUNCHER = (
    "import resource, sys\n"
    "mem, nproc, fsize = (int(a) for a in sys.argv[1:4])\n"
    "for limit, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_NPROC, nproc),\n"
    "                     (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_NOFILE, 1024), (resource.RLIMIT_CORE, 0)):\n"
    "    if value >= 0:\n"
    "        resource.setrlimit(limit, (value, value))\n"
    "del sys.argv[1:4]\n"
    "from ipykernel.kernelapp import launch_new_instance\n"
    "launch_new_instance()\n"
)
INTERRUPT_GRACE_S = 5.0  # after SIGINT at the deadline, how long the kernel gets to become idle
POLL_S = 0.1
FILE_LIMIT_BYTES = 256 * 2**20
PROCESS_LIMIT = 256  # processes and threads of the sandbox (a kernel with torch uses about 20)
_MEMORY_SIGNS = ("MemoryError", "bad_alloc", "Cannot allocate memory", "out of memory", "std::bad_alloc",
                 "can't allocate memory", "not enough memory")


@dataclass
class Outcome:
    """What happened to one execute request.

    ``status``: ``ok``, ``error`` (the code raised), ``timeout`` (interrupted at the deadline and the
    kernel recovered), ``hung`` (it did not recover from the interrupt and was killed) or ``died``
    (the kernel process ended).
    """

    status: str
    ename: str = ""
    evalue: str = ""
    text: str = ""  # the first ``keep`` characters of stream output
    output_chars: int = 0  # all output, counted
    seconds: float = 0.0
    exit_code: int | None = None
    memory: bool = False  # a died/hung kernel that showed signs of running out of memory
    notes: list[str] = field(default_factory=list)


class Kernel:
    """A kernel process for one submission, with its limits: inside bubblewrap unless ``sandbox`` is None."""

    def __init__(self, box: Path, private: Path, memory_mb: int, threads: int, sandbox=None):
        self.box, self.private, self.sandbox = box, private, sandbox
        self.memory_mb, self.threads = memory_mb, threads
        self.proc: subprocess.Popen | None = None
        self.client: BlockingKernelClient | None = None
        self.log_path = private / "kernel.log"

    # ---------------------------------------------------------------- life
    def _unsandboxed_environment(self) -> dict[str, str]:
        """--no-sandbox: still a fresh environment (nothing of the instructor's), folders in the box."""
        home, t = self.box, str(self.threads)
        for d in (home / "work", home / "tmp", home / ".cache"):
            d.mkdir(parents=True, exist_ok=True)
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TMPDIR": str(home / "tmp"),
                "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(home / ".cache" / "mpl"),
                "IPYTHONDIR": str(home / ".cache" / "ipython"), "XDG_CACHE_HOME": str(home / ".cache"),
                "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t,
                "OPENBLAS_NUM_THREADS": t, "PYDEVD_DISABLE_FILE_VALIDATION": "1",
                "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PYTHONUSERBASE": site.getuserbase(),
                **{k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}}

    def start(self, timeout: float) -> None:
        """Start the kernel and wait until it answers; raises RuntimeError when it cannot start."""
        key = secrets.token_hex(16).encode()
        if self.sandbox:
            self.sandbox.prepare()
        run = self.sandbox.run if self.sandbox else self.private
        inside = _sandbox.INSIDE_RUN if self.sandbox else str(run)
        host_conn = self.private / "kernel-host.json"
        info = write_connection_file(str(host_conn), transport="ipc", ip=str(run / "k"), key=key)[1]
        kernel_conn = run / "kernel.json"
        write_connection_file(str(kernel_conn), transport="ipc", ip=f"{inside}/k", key=key,
                              shell_port=info["shell_port"], iopub_port=info["iopub_port"],
                              stdin_port=info["stdin_port"], control_port=info["control_port"], hb_port=info["hb_port"])
        limits = [str(self.memory_mb * 2**20), str(PROCESS_LIMIT), str(FILE_LIMIT_BYTES)]
        inner = [sys.executable, "-c", _LAUNCHER, *limits, "-f", f"{inside}/kernel.json",
                 "--HistoryManager.enabled=False", "--InteractiveShell.colors=nocolor"]
        if self.sandbox:
            self.sandbox.give(kernel_conn)
            cmd, env, cwd = self.sandbox.command(inner, self.threads), {"PATH": os.environ.get("PATH", "")}, None
        else:
            cmd, env, cwd = inner, self._unsandboxed_environment(), self.box / "work"
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (the kernel writes it until kill() closes it)
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        client = BlockingKernelClient()
        client.load_connection_file(str(host_conn))
        client.start_channels(hb=False)  # liveness comes from the process itself
        self.client = client
        deadline = time.monotonic() + timeout
        while True:
            client.kernel_info()  # requests queue up until the kernel listens: any reply will do
            try:
                reply = client.get_shell_msg(timeout=1)
            except queue.Empty:
                reply = None
            if reply is not None and reply.get("msg_type") == "kernel_info_reply":
                break
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the kernel did not start (exit code {self.proc.poll()}): {self.log_tail()}")
        time.sleep(0.2)
        self._drain_shell()  # the replies to the other kernel_info requests
        while True:  # and their iopub messages
            try:
                client.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                break

    def interrupt(self) -> None:
        """Ask the kernel to interrupt what it runs (SIGINT, sent by the kernel itself on a control message)."""
        if self.client is not None:
            self.client.control_channel.send(self.client.session.msg("interrupt_request", {}))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """End the kernel and everything in its session, close the channels."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 400) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - chars))
                return f.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""

    # ------------------------------------------------------------- running
    def execute(self, code: str, timeout: float, *, store_history: bool = True, keep: int = 4096) -> Outcome:
        """Run ``code``; interrupt at ``timeout`` seconds, kill if the interrupt does not help."""
        assert self.client is not None and self.proc is not None
        client = self.client
        start = time.monotonic()
        msg_id = client.execute(code, store_history=store_history, allow_stdin=False, stop_on_error=False)
        deadline, interrupted_at = start + timeout, None
        out = Outcome("ok")
        chunks: list[str] = []
        while True:
            now = time.monotonic()
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let a last error message arrive
                self._drain(msg_id, out, chunks, keep)
                return self._died(out, chunks, start)
            if interrupted_at is None and now >= deadline:
                interrupted_at = now
                self.interrupt()
            if interrupted_at is not None and now >= interrupted_at + INTERRUPT_GRACE_S:
                self._drain(msg_id, out, chunks, keep)
                out.memory = self._memory_signs(out)
                self.kill()
                out.status, out.seconds, out.text = "hung", time.monotonic() - start, "".join(chunks)
                return out
            try:
                msg = client.get_iopub_msg(timeout=POLL_S)
            except queue.Empty:
                continue
            if self._handle(msg, msg_id, out, chunks, keep):
                break
        reply = self._reply(msg_id)
        if out.status == "ok" and reply.get("status") == "error":  # the iopub error message can get lost when
            out.status = "error"  # memory ran out; the execute_reply still says what happened
            out.ename, out.evalue = reply.get("ename", ""), str(reply.get("evalue", ""))[:2000]
        out.text, out.seconds = "".join(chunks), time.monotonic() - start
        if interrupted_at is not None:
            out.status = "timeout"
        return out

    def _reply(self, msg_id: str, timeout: float = 5.0) -> dict:
        """The content of the execute_reply to ``msg_id`` (empty if it does not come); older replies are dropped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            try:
                msg = self.client.get_shell_msg(timeout=0.1)
            except queue.Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg.get("content", {})
        return {}

    def _handle(self, msg: dict, msg_id: str, out: Outcome, chunks: list[str], keep: int) -> bool:
        """Account for one iopub message; True when the request is finished."""
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            return False
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            self._keep(content.get("text", ""), out, chunks, keep)
        elif kind in ("execute_result", "display_data", "update_display_data"):
            data = content.get("data", {})
            out.output_chars += sum(len(v) if isinstance(v, str) else len(str(v)) for v in data.values())
        elif kind == "error":
            out.status, out.ename, out.evalue = "error", content.get("ename", ""), str(content.get("evalue", ""))[:2000]
        elif kind == "status" and content.get("execution_state") == "idle":
            return True
        return False

    @staticmethod
    def _keep(text: str, out: Outcome, chunks: list[str], keep: int) -> None:
        out.output_chars += len(text)
        room = keep - sum(map(len, chunks))
        if room > 0:
            chunks.append(text[:room])

    def _drain(self, msg_id: str, out: Outcome, chunks: list[str], keep: int) -> None:
        if self.client is None:
            return
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                return
            self._handle(msg, msg_id, out, chunks, keep)

    def _drain_shell(self) -> None:
        while True:
            try:
                self.client.get_shell_msg(timeout=0.01)
            except queue.Empty:
                return

    def _memory_signs(self, out: Outcome) -> bool:
        text = self.log_tail(4000) + out.ename
        return any(sign in text for sign in _MEMORY_SIGNS)

    def _died(self, out: Outcome, chunks: list[str], start: float) -> Outcome:
        code = self.proc.returncode
        out.memory = self._memory_signs(out) or code == -signal.SIGKILL
        self.kill()
        out.status, out.exit_code = "died", code
        out.text, out.seconds = "".join(chunks), time.monotonic() - start
        return out
