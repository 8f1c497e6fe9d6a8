"""Training beyond one process: torchrun + DistributedDataParallel with Gloo on 2 CPU processes.

Sharded balanced batches and torchrun's environment (no processes); DDP's gradient averaging
and the collective flags on 2 spawned Gloo processes; a real ``rascore train`` under torchrun
through the console script; a worker job with nproc=2 (torchrun with ``-m
rascore.jobs.distributed_entry``), its validation, its result files and its cancellation. Children run with OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from rascore.ports import free_port
from tests.conftest import BIN, cli_env

TINY_ARGS = [
    "--modality",
    "SGS",
    "--preset",
    "fast",
    "--device",
    "cpu",
    "--epochs",
    "2",
    "--size",
    "32",
    "40",
    "--weights",
    "none",
    "--batch-size",
    "4",
    "--json",
]
TINY_JOB = {
    "epochs": 2,
    "size": [32, 40],
    "net_width": 4,
    "batch_size": 4,
    "weights": "none",
    "preset": "fast",
    "nproc": 2,
}
SMALL = {"train": 5, "test1": 1, "test2": 1}


def _one_thread_env(data) -> dict[str, str]:
    env = cli_env(data)
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_shards_are_disjoint_slices_of_one_order():
    """Every rank draws the same balanced order and keeps its own slice; one process is unchanged."""
    from torch.utils.data import BatchSampler, WeightedRandomSampler

    from rascore.train.data import balanced_batches, steps_per_epoch
    from rascore.train.distributed import shard

    y = torch.tensor([0] * 9 + [1] * 3 + [2] * 2 + [3] * 7)
    counts = torch.bincount(y, minlength=4).double()
    order = torch.multinomial(
        (1.0 / counts)[y], len(y), True, generator=torch.Generator().manual_seed(3)
    ).tolist()
    batches = [list(balanced_batches(y, 4, torch.Generator().manual_seed(3), rank, 2)) for rank in (0, 1)]
    taken = [[i for batch in rank_batches for i in batch] for rank_batches in batches]
    assert len(batches[0]) == len(batches[1]) == steps_per_epoch(len(y), 4, 2) == 2
    padded = order + order[:1]  # 21 items pad to 22: 11 per rank, two batches of 4 each
    assert taken[0] == padded[0::2][:8] and taken[1] == padded[1::2][:8]
    assert shard(list(range(5)), 0, 2) == [0, 2, 4] and shard(list(range(5)), 1, 2) == [1, 3, 0]
    assert shard([7, 8, 9], 0, 1) == [7, 8, 9]
    # one process: exactly the WeightedRandomSampler draw it always was
    single = list(balanced_batches(y, 4, torch.Generator().manual_seed(3)))
    sampler = WeightedRandomSampler((1.0 / counts)[y], len(y), True, torch.Generator().manual_seed(3))
    assert single == list(BatchSampler(sampler, 4, True)) and steps_per_epoch(len(y), 4) == 5


def test_environment_from_torchrun_variables():
    from rascore.train.distributed import DistEnv, active, backend_for, environment, local_device

    assert environment({}) == DistEnv(1, 0, 0) and not environment({}).enabled
    env = environment({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert env == DistEnv(4, 3, 1) and env.enabled and not env.is_main
    for bad in ({"WORLD_SIZE": "2", "RANK": "2"}, {"WORLD_SIZE": "two"}):
        with pytest.raises(ValueError):
            environment(bad)
    assert active() == DistEnv()  # no group in the test process
    assert backend_for("cuda") == "nccl" and backend_for("cpu") == "gloo"
    assert local_device("cpu", env) == torch.device("cpu")


def _ddp_rank(rank: int, world_size: int, port: int) -> None:
    """One spawned Gloo process: DDP averages gradients; the flags are collective."""
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
    )
    torch.set_num_threads(1)
    import torch.distributed as dist

    from rascore.train import distributed

    with distributed.session("cpu") as env:
        assert env.rank == rank and distributed.active() == env and distributed.backend() == "gloo"
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4))
        before = [p.detach().clone() for p in net.parameters()]
        wrapped = distributed.wrap(net, torch.device("cpu"))
        assert distributed.unwrap(wrapped) is net and wrapped is not net
        data = torch.Generator().manual_seed(100 + rank)  # different data on each rank
        x, y = torch.randn(8, 6, generator=data), torch.randint(0, 4, (8,), generator=data)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
        torch.nn.functional.cross_entropy(wrapped(x), y).backward()
        synced = [p.grad.detach().clone() for p in net.parameters()]
        optimizer.step()
        # this rank's own gradient, without DDP, from the same starting weights
        local = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4))
        with torch.no_grad():
            for p, b in zip(local.parameters(), before):
                p.copy_(b)
        torch.nn.functional.cross_entropy(local(x), y).backward()
        own = [p.grad.detach() for p in local.parameters()]
        gathered = [[torch.zeros_like(g) for _ in range(world_size)] for g in own]
        for slots, g in zip(gathered, own):
            dist.all_gather(slots, g)
        for g_synced, slots in zip(synced, gathered):
            assert torch.allclose(g_synced, torch.stack(slots).mean(0), atol=1e-6)
        assert not all(torch.allclose(a, b) for a, b in zip(synced, own))
        weights = torch.cat([p.detach().flatten() for p in net.parameters()])
        everyone = [torch.zeros_like(weights) for _ in range(world_size)]
        dist.all_gather(everyone, weights)
        assert all(torch.equal(everyone[0], w) for w in everyone)
        # collective decisions: any rank's True, rank 0's flag, the mean
        cpu = torch.device("cpu")
        assert distributed.any_rank(rank == 1, cpu) is True
        assert distributed.any_rank(False, cpu) is False
        assert distributed.broadcast_flag(rank == 0, cpu) is True
        assert distributed.mean_across(float(rank), cpu) == pytest.approx(0.5)
        stop = distributed.collective_stop((lambda: True) if rank == 0 else None, cpu)
        assert stop() is True and stop() is True
    assert not dist.is_initialized()


def test_ddp_averages_gradients_across_two_gloo_processes():
    """After one step on different data both ranks hold the same weights (mean of the gradients)."""
    import torch.multiprocessing as mp

    mp.spawn(_ddp_rank, args=(2, free_port()), nprocs=2, join=True)


def test_torchrun_cli_trains_one_version_on_two_processes(project):
    """``torchrun --nproc_per_node 2 $(which rascore) train ...``: one version, trained by 2 ranks."""
    from rascore.store import registry
    from rascore.train.checkpoint import load_checkpoint
    from rascore.train.versions import version_files
    from tests.test_train import build_tiny

    build_tiny(project, "SGS", SMALL)
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(BIN / "rascore"),
            "train",
            *TINY_ARGS,
        ],
        env=_one_thread_env(project.settings.data_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # one JSON document: only rank 0 printed
    assert summary["version"] == 1 and summary["activated"] is True
    assert summary["training"]["world_size"] == 2 and summary["training"]["backend"] == "gloo"
    assert summary["training"]["epochs_run"] == 2
    assert done.stderr.count("training: 100%") <= 2  # one progress bar (rank 0's)
    rows = registry.list_versions(project.store, "SGS")
    assert len(rows) == 1 and rows[0]["metrics"]["training"]["world_size"] == 2
    path, card = version_files(project, rows[0])
    checkpoint = load_checkpoint(path)
    assert checkpoint["metrics"]["training"]["backend"] == "gloo"
    assert not any(k.startswith("module.") for k in checkpoint["model"])  # the plain network
    assert [h["epoch"] for h in checkpoint["history"]] == [1, 2]
    assert "x 2 processes (DistributedDataParallel, gloo backend" in card.read_text()
    print(f"torchrun CLI run: {time.monotonic() - started:.1f} s")


def test_worker_runs_an_nproc_2_job_under_torchrun(project, monkeypatch):
    """nproc=2: the worker launches torchrun, rank 0 reports into the row, a version is registered."""
    from rascore.jobs import Worker
    from rascore.store import jobs as job_sql
    from rascore.store import registry
    from rascore.train.checkpoint import load_checkpoint
    from rascore.train.versions import version_files
    from tests.test_train import build_tiny

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    build_tiny(project, "SGS", SMALL)
    for bad, reason in (
        (0, "nproc must be a whole number from 1 to 64, not 0"),
        ("two", "nproc must be a whole number"),
        (99, "nproc must be"),
    ):
        job_sql.submit(project.store, "train", "SGS", {**TINY_JOB, "nproc": bad})
        row = Worker(project).run_once()
        assert row["status"] == "failed" and reason in row["error"], row["error"]
    job_id = job_sql.submit(project.store, "train", "SGS", TINY_JOB)
    row = Worker(project, heartbeat_s=0.5).run_once()
    assert row["id"] == job_id and row["status"] == "succeeded", (row["error"], row["log_tail"])
    active = registry.active_version(project.store, "SGS")
    assert active["version"] == 1 and row["model_version_id"] == active["id"]
    assert len(registry.list_versions(project.store, "SGS")) == 1
    assert [h["epoch"] for h in row["progress"]["history"]] == [1, 2]
    assert row["progress"]["done"] and row["progress"]["model_version_id"] == active["id"]
    log = row["log_tail"]
    for line in (
        "claimed by",
        "starting 2 training processes",
        "x 2 processes (gloo)",
        "registered SGS v1",
        "2 training processes finished",
        "succeeded",
    ):
        assert line in log, log
    assert log.index("claimed by") < log.index("registered SGS v1") < log.index("succeeded")
    path, _ = version_files(project, active)
    training = load_checkpoint(path)["metrics"]["training"]
    assert training["world_size"] == 2 and training["backend"] == "gloo"
    assert active["job_id"] == job_id


def test_cancel_stops_every_process_and_publishes_nothing(project, monkeypatch):
    """A cancel reaches rank 0 between steps; all ranks stop, the row says cancelled, no version."""
    from rascore.jobs import Worker
    from rascore.store import jobs as job_sql
    from rascore.store import registry
    from tests.test_train import build_tiny

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    build_tiny(project, "SGS", SMALL)
    job_id = job_sql.submit(project.store, "train", "SGS", {**TINY_JOB, "epochs": 500, "patience": 500})

    def cancel_after_first_epoch() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            row = job_sql.get(project.store, job_id)
            if row["status"] not in ("queued", "running") or row["progress"].get("history"):
                break
            time.sleep(0.2)
        job_sql.request_cancel(project.store, job_id)

    canceller = threading.Thread(target=cancel_after_first_epoch)
    canceller.start()
    started = time.monotonic()
    row = Worker(project, heartbeat_s=0.5).run_once()
    canceller.join()
    assert row["status"] == "cancelled", (row["error"], row["log_tail"])
    assert row["progress"]["history"] and "cancelled between steps" in row["log_tail"]
    assert registry.list_versions(project.store, "SGS") == []
    assert not (project.settings.models_dir / "SGS").exists() or not any(
        p.name.startswith("v") for p in (project.settings.models_dir / "SGS").iterdir()
    )
    print(f"cancelled run: {time.monotonic() - started:.1f} s")


def test_failure_comes_from_the_ranks_result_files(tmp_path):
    """The worker decides from each rank's result file (data), never from the processes' output."""
    from rascore.jobs.distributed_entry import read_results, write_result
    from rascore.jobs.torchrun import launch_command, outcome

    write_result(tmp_path, 1, "failed", error="DPD has 0 training items with a reference label")
    write_result(tmp_path, 0, "failed", error="Connection closed by peer")  # because rank 1 failed
    results = read_results(tmp_path)
    assert sorted(results) == [0, 1]
    with pytest.raises(RuntimeError, match="^DPD has 0 training items with a reference label$"):
        outcome(results, 1, "rascore train: something else entirely\n")
    with pytest.raises(RuntimeError, match="^the training processes exited with code 7$"):
        outcome({}, 7)
    with pytest.raises(RuntimeError, match=r"code -9 \(last output: Killed\)"):
        outcome({}, -9, "[W init] something\nKilled\n")
    assert outcome({0: {"rank": 0, "status": "succeeded", "model_version_id": 12}}, 0) == 12
    command = launch_command(5, 3, tmp_path, parent_pid=42)
    assert command[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=3", "-m"]
    assert command[6:] == [
        "rascore.jobs.distributed_entry",
        "--job",
        "5",
        "--result-dir",
        str(tmp_path),
        "--parent-pid",
        "42",
    ]


def test_entry_point_writes_a_failed_result_for_a_job_it_cannot_run(project, tmp_path):
    """``python -m rascore.jobs.distributed_entry`` on a queued (unclaimed) job: failure as data."""
    from rascore.jobs.distributed_entry import read_results
    from rascore.store import jobs as job_sql

    job_id = job_sql.submit(project.store, "train", "SGS", {})
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rascore.jobs.distributed_entry",
            "--job",
            str(job_id),
            "--result-dir",
            str(tmp_path),
        ],
        env=_one_thread_env(project.settings.data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    (result,) = read_results(tmp_path).values()
    assert result["status"] == "failed" and result["rank"] == 0
    assert result["error"].startswith(f"job {job_id} is a queued train job")


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_a_rank_exits_when_the_worker_is_gone(tmp_path, sigint):
    """``--parent-pid``: a training process whose worker died stops (KeyboardInterrupt first),
    also when it was started with SIGINT ignored, as a background job of a shell is."""
    code = (
        "import sys, time\nfrom rascore.jobs.torchrun import exit_with\n"
        "exit_with(int(sys.argv[1]), interval_s=0.1, grace_s=5)\n"
        # 'ready' is printed inside the try: the interrupt may come the moment the line is read
        "try:\n    print('ready', flush=True)\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    sys.exit(3)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint == "ignored" else None
    rank = subprocess.Popen(
        [sys.executable, "-c", code, str(worker.pid)], stdout=subprocess.PIPE, text=True, preexec_fn=ignore
    )
    try:
        assert rank.stdout.readline().strip() == "ready"
        assert rank.poll() is None
        worker.kill()
        assert rank.wait(timeout=20) == 3
    finally:
        for process in (worker, rank):
            if process.poll() is None:
                process.kill()
            process.wait()


def test_worker_side_terminates_on_cancel_and_reports_failures(project, monkeypatch):
    """run_under_torchrun with stand-in commands: cancel -> SIGTERM after the grace; error lines."""
    from rascore.jobs import Cancelled, JobContext
    from rascore.jobs import torchrun
    from rascore.store import jobs as job_sql

    def claimed() -> tuple[dict, JobContext]:
        job_sql.submit(project.store, "train", "SGS", {"nproc": 2})
        job = job_sql.claim(project.store, "test")
        return job, JobContext(project.store, job["id"], cancel_every_s=0)

    def command(code: str):
        return lambda job_id, nproc, result_dir, parent_pid=None: [
            sys.executable,
            "-c",
            code,
            str(result_dir),
        ]

    def failing(error: str) -> str:
        return (
            "import sys\nfrom rascore.jobs.distributed_entry import write_result\n"
            f"write_result(sys.argv[1], 0, 'failed', error={error!r})\nsys.exit(1)"
        )

    # ignores the cancel (no rank 0 checking the row): terminated after the grace period
    monkeypatch.setattr(torchrun, "launch_command", command("import time; time.sleep(60)"))
    job, ctx = claimed()
    job_sql.request_cancel(project.store, job["id"])
    started = time.monotonic()
    with pytest.raises(Cancelled):
        torchrun.run_under_torchrun(project, job, ctx, 2, poll_s=0.1, cancel_grace_s=0.5)
    assert time.monotonic() - started < 20 and "cancel: terminated" in ctx.log_tail
    # a failing rank: the reason in its result file becomes the job's
    monkeypatch.setattr(torchrun, "launch_command", command(failing("no labels")))
    job, ctx = claimed()
    with pytest.raises(RuntimeError, match="^no labels$"):
        torchrun.run_under_torchrun(project, job, ctx, 2, poll_s=0.1)
    # exiting 0 without registering a version is a failure too
    monkeypatch.setattr(torchrun, "launch_command", command("pass"))
    job, ctx = claimed()
    with pytest.raises(RuntimeError, match="without registering a version"):
        torchrun.run_under_torchrun(project, job, ctx, 2, poll_s=0.1)
