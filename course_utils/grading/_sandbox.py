"""The operating-system sandbox each submission's kernel runs in: bubblewrap, and the limits it needs.

A kernel runs as ``bwrap ... python -c LAUNCHER ...`` where bubblewrap gives it:

- a new, empty root with read-only binds of the system (``/usr``, ``/etc`` and the merged-usr
  links) and of the Python environment the grader runs in (its prefixes and ``sys.path``
  folders), minus anything inside the course's repository;
- the course package the notebooks import, alone and read-only, at ``/opt/course/course_utils``
  (``PYTHONPATH=/opt/course``); ``solutions/``, the other submissions, the output folder and the
  course's source tree are simply not there;
- one private writable folder (``/home/learner``, holding ``work`` and ``tmp``, on disk) and the
  folder of the kernel's sockets (``/run/kernel``);
- new network (no interface but its own loopback), process, IPC and UTS namespaces, a new
  session (no terminal to inject into) and death with the grader (``--die-with-parent``);
- a fresh environment (``--clearenv``): only the variables set below, nothing of the instructor's.

Inside, the launcher sets the resource limits before Python imports anything: ``RLIMIT_AS``
(the memory limit counts every mapping, shared ones included), ``RLIMIT_NPROC`` (processes and
threads), ``RLIMIT_FSIZE`` (largest file), ``RLIMIT_NOFILE`` and no core files.

``RLIMIT_NPROC`` is never enforced for the real root user, and it counts every process of a
user id: so when the grader runs as root, each sandbox drops to a user id of its own (drawn from
:data:`SANDBOX_UIDS`, owned by nobody on the system) first: bubblewrap keeps only
``CAP_SETUID``/``CAP_SETGID`` for ``setpriv``, which then clears every capability and the
bounding set. Two sandboxes never share a process count, nor can they signal each other. As an
ordinary user, bubblewrap adds a user namespace, where the process count starts at zero.
"""

from __future__ import annotations

import os
import secrets
import shutil
import site
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SandboxUnavailable", "Sandbox", "find_bwrap", "INSTALL_HINT", "NOBODY"]

NOBODY = 65534
SANDBOX_UIDS = range(200_000, 260_000)  # as root: one unused user id per sandbox
INSIDE_HOME = "/home/learner"
INSIDE_COURSE = "/opt/course"
INSIDE_RUN = "/run/kernel"
INSTALL_HINT = ("bubblewrap (`bwrap`) is needed to grade untrusted notebooks: install it with "
                "`sudo apt-get install bubblewrap` (Debian/Ubuntu), `sudo dnf install bubblewrap` (Fedora) or "
                "`sudo pacman -S bubblewrap` (Arch); user namespaces must be enabled. To grade without any "
                "isolation (your own notebooks only), pass --no-sandbox: every report then says so.")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create its namespaces here; the message says how to fix it."""


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def shown(path: Path, hidden: list[Path]) -> bool:
    """Whether a folder of the Python environment may be bound into the sandbox: never one of ``hidden`` (the
    repository, the package) or a folder that holds one; a folder inside the repository (a ``.venv``) is fine."""
    return not any(path == h or path in h.parents for h in hidden)


def _python_paths(exclude: list[Path]) -> list[str]:
    """Folders of the running Python that a kernel needs: prefixes and sys.path entries, outside ``exclude``."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  *site.getsitepackages(), site.getusersitepackages(), *sys.path,
                  str(Path(sys.executable).resolve().parent.parent)]
    out: list[str] = []
    for c in candidates:
        if not c or not os.path.isdir(c):
            continue
        real = os.path.realpath(c)
        p = Path(real)
        if real in ("/", "/usr") or real.startswith("/usr/") or real.startswith(("/proc", "/sys", "/dev")):
            continue
        if not shown(p, exclude):
            continue
        if any(real == o or real.startswith(o + "/") for o in out):
            continue
        out = [o for o in out if not o.startswith(real + "/")] + [real]
    return sorted(out)


@dataclass
class Sandbox:
    """How to start a command inside bubblewrap for one submission.

    ``box`` is the host folder that becomes the kernel's private home (writable), ``run`` the host
    folder of its sockets; ``package_dir`` the course package shown read-only; ``hide`` the folders
    never shown even if the Python environment lies inside them (the course's repository).
    """

    box: Path
    run: Path
    package_dir: Path
    hide: list[Path]
    bwrap: str
    uid: int = field(default_factory=lambda: SANDBOX_UIDS[secrets.randbelow(len(SANDBOX_UIDS))])

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def prepare(self) -> None:
        for d in (self.box / "work", self.box / "tmp", self.box / ".cache", self.run):
            d.mkdir(parents=True, exist_ok=True)
        if self.as_root:  # the sandbox runs as its own user id: give it its own folders, nothing else
            for d in (self.box, self.box / "work", self.box / "tmp", self.box / ".cache", self.run):
                os.chown(d, self.uid, self.uid)
                os.chmod(d, 0o700)

    def give(self, path: Path) -> None:
        """Hand a file the grader wrote (the kernel's connection file) to the sandbox's user."""
        if self.as_root:
            os.chown(path, self.uid, self.uid)

    def environment(self, threads: int) -> dict[str, str]:
        t = str(threads)
        return {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": INSIDE_HOME,
            "TMPDIR": f"{INSIDE_HOME}/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONPATH": INSIDE_COURSE,
            "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": f"{INSIDE_HOME}/.cache/mpl", "IPYTHONDIR": f"{INSIDE_HOME}/.cache/ipython",
            "XDG_CACHE_HOME": f"{INSIDE_HOME}/.cache", "XDG_CONFIG_HOME": f"{INSIDE_HOME}/.cache/config",
            "TORCH_HOME": f"{INSIDE_HOME}/.cache/torch", "OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t,
            "OPENBLAS_NUM_THREADS": t, "PYDEVD_DISABLE_FILE_VALIDATION": "1", "JUPYTER_PLATFORM_DIRS": "1",
            **{k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ},
        }

    def command(self, inner: list[str], threads: int) -> list[str]:
        """The full command line: bwrap, its binds and namespaces, then ``inner`` (run inside)."""
        args = [self.bwrap, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid",
                "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
        if not self.as_root:
            args += ["--unshare-user", "--uid", str(os.getuid()), "--gid", str(os.getgid())]
        made: set[str] = set()

        def dirs_for(dest: str) -> list[str]:
            out = []
            parts = Path(dest).parts[1:-1]
            for k in range(1, len(parts) + 1):
                d = "/" + "/".join(parts[:k])
                if d not in made:
                    made.add(d)
                    out += ["--perms", "0755", "--dir", d]
            return out

        args += ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "lib", "lib32", "lib64", "libx32", "sbin"):
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        args += ["--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev"]
        for p in _python_paths(self.hide + [self.package_dir]):
            args += dirs_for(p) + ["--ro-bind", p, p]
        args += dirs_for(f"{INSIDE_COURSE}/course_utils") + ["--ro-bind", str(self.package_dir),
                                                             f"{INSIDE_COURSE}/course_utils"]
        args += dirs_for(INSIDE_HOME + "/x") + ["--bind", str(self.box), INSIDE_HOME]
        args += ["--bind", str(self.box / "tmp"), "/tmp", "--bind", str(self.box / "tmp"), "/dev/shm"]
        args += dirs_for(INSIDE_RUN + "/x") + ["--bind", str(self.run), INSIDE_RUN]
        args += ["--chdir", f"{INSIDE_HOME}/work", "--clearenv"]
        for k, v in self.environment(threads).items():
            args += ["--setenv", k, v]
        if self.as_root:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                     shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={self.uid}", f"--regid={self.uid}",
                     "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        else:
            args += ["--"]
        return args + inner
