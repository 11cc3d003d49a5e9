"""Run untrusted code in a subprocess that cannot reach the grader.

``run(job_dir, timeout=..., memory=...)`` executes ``job_dir/child.py`` with the
venv's Python and returns a :class:`Run` (exit code, timed out, stderr tail). The job
directory is the only place the child can write; everything the grader needs back is
read from files there afterwards (arrays in an .npz, loaded without pickle).

Layers, strongest first (see instructor/README.md, "What is protected"):

- bubblewrap, when ``bwrap`` is on PATH: a new mount namespace that shows only the
  system and Python folders read-only, a private /tmp, the job directory read-write at
  /sandbox and nothing else (the course repository, other submissions, the gradebook
  and home folders are absent); new PID, network, IPC and UTS namespaces (no network,
  the grader's processes are invisible, every process of the job dies with it);
  ``--die-with-parent``, ``--new-session``, an empty environment.
- always: a scrubbed environment (no variable of the grader's is passed on), resource
  limits set before exec (RLIMIT_AS memory, CPU seconds, file size, no core files), a
  wall-clock timeout, its own session, and the whole process group killed afterwards.
- without bwrap (fallback): when the grader runs as root and other users can run its
  Python, each job runs under its own unused uid (61000 + n), so it cannot write the
  grader's files or signal its
  processes, and every process of that uid is killed afterwards (survivors that left
  the process group included); if the grader is not root, a submission can read and
  write what the grader's user can, and a process that leaves its session survives.
"""

from __future__ import annotations

import functools
import itertools
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Run", "run", "have_bwrap", "isolation"]

SANDBOX = "/sandbox"  # where the job directory appears inside bwrap
UID_BASE, UID_SPAN = 61000, 4000  # fallback: one unused uid per running job
_next_uid = itertools.count()
_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class Run:
    returncode: int | None  # None: killed at the timeout
    timed_out: bool
    seconds: float
    stderr: str  # the last 2000 characters, for the instructor's log


def have_bwrap() -> bool:
    if os.environ.get("GRADER_NO_BWRAP"):  # tests of the fallback path
        return False
    exe = shutil.which("bwrap")
    if not exe:
        return False
    probe = subprocess.run(
        [exe, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "true"],
        capture_output=True,
    )
    return probe.returncode == 0


_BWRAP: bool | None = None


def isolation() -> str:
    """'bwrap', or which fallback: a subprocess with limits, under its own uid when
    the grader is root and other users can run its Python."""
    global _BWRAP
    if _BWRAP is None:
        _BWRAP = have_bwrap()
    if _BWRAP:
        return "bwrap"
    if os.geteuid() == 0 and _others_can_run_python():
        return "fallback (own uid per job)"
    return "fallback (grader's uid: weak, install bubblewrap)"


def _python_roots() -> list[str]:
    """Folders the child's Python needs: the venv and the base installation."""
    roots = {sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent)}
    return sorted(p for p in roots if p and Path(p).exists())


def _bwrap_argv(job_dir: Path, argv: list[str], hide: list[str]) -> list[str]:
    cmd = ["bwrap"]
    for path in ("/usr", "/etc"):
        cmd += ["--ro-bind", path, path]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            cmd += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            cmd += ["--ro-bind", str(target), str(target)]
    # a private /tmp first: mounts are made in order, and a venv may live under /tmp
    # (a CI checkout there), so the Python folders are bound on top of it, not hidden
    cmd += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for root in _python_roots():
        if not root.startswith(("/usr/", "/etc/")):
            cmd += ["--ro-bind", root, root]
    for path in hide:  # e.g. torch for a numpy exercise: an empty folder instead
        cmd += ["--tmpfs", path]
    cmd += [
        "--bind", str(job_dir), SANDBOX, "--chdir", SANDBOX,
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--die-with-parent", "--new-session", "--clearenv",
    ]
    for key, value in _child_env(SANDBOX).items():
        cmd += ["--setenv", key, value]
    return cmd + argv


def _child_env(home: str) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": f"{home}/.mpl", "TMPDIR": "/tmp"}
    env.update({key: "1" for key in _THREADS})
    return env


def _limits(memory: int, cpu_seconds: int, uid: int | None):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

    return apply


@functools.cache
def _others_can_run_python() -> bool:
    """Can an unprivileged uid run this Python (all folders up to it searchable)?"""
    import stat

    for target in {Path(sys.executable).resolve(), Path(sys.prefix).resolve()}:
        for folder in [target, *target.parents]:
            mode = folder.stat().st_mode
            readable = folder != target or mode & stat.S_IROTH
            if not mode & stat.S_IXOTH or not readable:
                return False
    return True


def _kill_uid(uid: int) -> None:
    """SIGKILL every process whose real uid is `uid` (fallback survivors)."""
    for _ in range(3):
        found = False
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                uids = [ln for ln in status.read_text().splitlines()
                        if ln.startswith("Uid:")]
                if uids and int(uids[0].split()[1]) == uid:
                    found = True
                    os.kill(int(status.parent.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue
        if not found:
            return
        time.sleep(0.05)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run(job_dir: str | Path, *, timeout: float = 20.0, memory: int = 3 << 30,
        script: str = "child.py", hide: tuple[str, ...] = ()) -> Run:
    """Run ``python -I job_dir/script`` sandboxed; kill everything it started after.

    timeout: wall-clock seconds; memory: bytes of address space (RLIMIT_AS); hide:
    folders replaced by empty ones inside bwrap (without bwrap the child's own import
    blocker is all there is).
    """
    job_dir = Path(job_dir).resolve()
    python = sys.executable
    uid = None
    if isolation() == "bwrap":
        argv = _bwrap_argv(job_dir, [python, "-I", f"{SANDBOX}/{script}"],
                           list(hide))
        env = {"PATH": "/usr/bin:/bin"}
    else:
        argv = [python, "-I", str(job_dir / script)]
        env = _child_env(str(job_dir))
        if os.geteuid() == 0 and _others_can_run_python():
            # its own uid may write its own job folder, and only that
            uid = UID_BASE + next(_next_uid) % UID_SPAN
            job_dir.parent.chmod(0o711)
            for path in [job_dir, *job_dir.rglob("*")]:
                os.chown(path, uid, uid, follow_symlinks=False)
    start = time.monotonic()
    with open(job_dir.parent / f"{job_dir.name}.stderr", "wb") as err:
        proc = subprocess.Popen(
            argv, cwd=str(job_dir), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            preexec_fn=_limits(memory, int(timeout) + 5, uid),
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        _kill_group(proc.pid)  # the job and whatever it left in its group
        if uid is not None:
            _kill_uid(uid)  # and whatever left the group
        proc.wait()
    stderr = (job_dir.parent / f"{job_dir.name}.stderr").read_bytes()[-2000:]
    return Run(
        None if timed_out else proc.returncode, timed_out,
        time.monotonic() - start, stderr.decode("utf-8", "replace"),
    )
