"""A training job on N processes: the worker starts torchrun, keeps the heartbeat, stops it on cancel.

``python -m torch.distributed.run --standalone --nproc_per_node=N -m rascore.jobs.distributed_entry
--job ID --result-dir DIR`` runs in its own process group (session). Each rank writes its outcome
to a result file in DIR (rascore.jobs.distributed_entry); the worker decides success, failure and
its reason from those files and the job row, never from the processes' output. Rank 0 writes progress into the job row and checks for a
cancel between steps (all ranks then stop at the same step); the worker meanwhile keeps the
row's heartbeat from its side thread and polls the cancel flag too: if the processes have not
stopped ``cancel_grace_s`` after a cancel, it sends SIGTERM to torchrun (which passes it on to
its ranks) and SIGKILL after ``TERM_TIMEOUT_S``. Each rank also watches the worker and its own
torchrun agent, and exits when either is gone, so a worker killed with ``kill -9`` leaves no
training behind to keep the row's heartbeat alive or to publish a version for a failed job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rascore.jobs.context import Cancelled, JobContext
from rascore.jobs.distributed_entry import read_results
from rascore.store import jobs as job_sql

CANCEL_GRACE_S = 15.0  # rank 0 normally stops within a step; then torchrun gets SIGTERM
TERM_TIMEOUT_S = 45.0  # torchrun waits 30 s for its ranks before SIGKILL; then so do we


def launch_command(
    job_id: int, nproc: int, result_dir: str | Path, parent_pid: int | None = None
) -> list[str]:
    """torchrun (as ``python -m torch.distributed.run``, same interpreter) on the jobs entry point."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "rascore.jobs.distributed_entry",
        "--job",
        str(job_id),
        "--result-dir",
        str(result_dir),
    ]
    if parent_pid is not None:
        command += ["--parent-pid", str(parent_pid)]
    return command


def child_env(settings) -> dict[str, str]:
    """The worker's environment, pointed at the worker's project whatever the current directory."""
    env = dict(os.environ)
    env.update(
        {
            "RASCORE_DB": str(Path(settings.db_path).resolve()),
            "RASCORE_DATA": str(Path(settings.data_dir).resolve()),
            "RASCORE_MODELS": str(Path(settings.models_dir).resolve()),
            "RASCORE_DEVICE": str(settings.device or "auto"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def terminate(child: subprocess.Popen, timeout: float = TERM_TIMEOUT_S) -> int:
    """SIGTERM torchrun's process group (it stops its ranks), SIGKILL if it outlives ``timeout``."""
    if child.poll() is None:
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return child.wait()


def outcome(results: dict[int, dict], returncode: int, output: str = "") -> int | None:
    """The registered version's id from the ranks' result files, or RuntimeError with the reason.

    The first rank to fail gives the reason (the others usually fail because it did); processes
    that died without writing a file get the exit code (and the output's last line, as context).
    """
    failed = sorted(
        (r for r in results.values() if r.get("status") == "failed"), key=lambda r: r.get("at", 0)
    )
    if failed:
        raise RuntimeError(failed[0].get("error") or "a training process failed")
    if returncode != 0:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        last = f" (last output: {lines[-1][:300]})" if lines else ""
        raise RuntimeError(f"the training processes exited with code {returncode}{last}")
    version_id = (results.get(0) or {}).get("model_version_id")
    return int(version_id) if version_id is not None else None


def run_under_torchrun(
    project,
    job: dict,
    ctx: JobContext,
    nproc: int,
    *,
    poll_s: float = 0.5,
    cancel_grace_s: float = CANCEL_GRACE_S,
) -> int:
    """Run a claimed training job on ``nproc`` processes and return the registered version's id."""
    store = project.store
    ctx.log(f"starting {nproc} training processes (torchrun --standalone --nproc_per_node={nproc})")
    ctx.on_progress({**ctx.progress, "phase": "starting", "nproc": nproc}, force=True)
    cancel_at: float | None = None
    terminated = False
    with tempfile.TemporaryFile() as output, tempfile.TemporaryDirectory(prefix="rascore-job-") as results:
        command = launch_command(job["id"], nproc, results, parent_pid=os.getpid())
        child = subprocess.Popen(
            command,
            env=child_env(project.settings),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while True:
                try:
                    returncode = child.wait(timeout=poll_s)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if cancel_at is None and ctx.should_stop():
                    cancel_at = time.monotonic()
                if cancel_at is not None and time.monotonic() - cancel_at > cancel_grace_s:
                    returncode, terminated = terminate(child), True
                    break
        except BaseException:  # the worker is stopping: take the processes down with it
            terminate(child)
            raise
        output.seek(0)
        text = output.read().decode("utf-8", errors="replace")
        ranks = read_results(results)
    row = job_sql.get(store, job["id"])
    ctx.adopt(row)  # rank 0's progress, history and log lines
    if terminated:
        ctx.log(
            f"the training processes were still running {cancel_grace_s:.0f} s after the cancel: terminated"
        )
    cancelled = any(r.get("status") == "cancelled" for r in ranks.values())
    if returncode != 0 and (cancelled or cancel_at is not None or row.get("cancel_requested")):
        raise Cancelled()
    version_id = outcome(ranks, returncode, text)
    if version_id is None:
        raise RuntimeError("the training processes exited without registering a version")
    ctx.log(f"{nproc} training processes finished")
    return int(version_id)


def exit_with(parent_pid: int, interval_s: float = 1.0, grace_s: float = 10.0) -> threading.Thread:
    """In a rank: stop when the worker (``parent_pid``) or this rank's torchrun agent goes away.

    The main thread gets KeyboardInterrupt first (so a half-written version is cleaned up); if
    it is stuck in a collective, the process exits ``grace_s`` later.
    """
    agent = os.getppid()
    # A process started in the background by a non-interactive shell (``rascore worker &`` in
    # ``make app``) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt
    # handler: the interrupt below would do nothing and the rank would die only at the grace
    # deadline, without its clean-up. Called from the main thread, so the handler can be set.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        try:  # a killed worker its parent has not reaped yet is a zombie (Linux)
            stat = Path(f"/proc/{pid}/stat").read_text()
            return stat[stat.rindex(")") + 2 :][:1] != "Z"
        except (OSError, ValueError):
            return True

    def watch() -> None:
        while alive(parent_pid) and os.getppid() == agent:
            time.sleep(interval_s)
        # SIGINT to the main thread itself: it wakes from a sleep or a wait, KeyboardInterrupt
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(grace_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="rascore-parent-watch", daemon=True)
    thread.start()
    return thread
