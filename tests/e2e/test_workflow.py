"""In a real browser against a real server and a real worker process: an admin watches the
Dashboard while the worker retrains a model; the new version's figures appear without a reload;
then the Predict & explain page shows that model's grade and an attribution overlay."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rascore.store import Store
from rascore.store import accounts
from rascore.store import jobs as job_sql
from rascore.store import registry
from tests.conftest import cli_env
from tests.e2e.harness import ROOT, images_loaded, open_page, settle, sign_in, stop, wait_until

pytestmark = pytest.mark.e2e

# A tiny retraining (small inputs, a narrow network, two epochs): a real job, over in seconds.
TINY_JOB = {
    "epochs": 2,
    "size": [32, 40],
    "net_width": 4,
    "batch_size": 8,
    "weights": "none",
    "preset": "fast",
    "activate": "always",
}


@pytest.fixture
def worker(e2e_project, tmp_path):
    """``rascore worker`` on the e2e project, as ``make app`` starts it; stopped afterwards. The
    demo's queued full-size retrainings are cancelled first, so the worker never claims one."""
    root, _ = e2e_project
    store = Store(root / "rascore.db")
    admin = accounts.user(store, "demo-admin")
    for job in job_sql.listing(store, status="queued"):
        job_sql.request_cancel(store, job["id"], user_id=admin["id"])
    store.close()
    log = tmp_path / "worker.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "rascore.cli", "worker", "--poll", "0.5"],
            cwd=ROOT,
            env={**cli_env(root), "OMP_NUM_THREADS": "1"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    yield process, log
    stop(process, timeout=20)


def test_dashboard_follows_a_retraining_then_an_attribution_opens(server, e2e_project, page, worker):
    root, passwords = e2e_project
    store = Store(root / "rascore.db")
    admin = accounts.user(store, "demo-admin")
    assert registry.active_version(store, "SGS") is None
    assert not job_sql.listing(store, status="queued")  # the demo's retrainings: cancelled

    sign_in(page, server.url, "demo-admin", passwords["demo-admin"])
    open_page(page, "Dashboard", timeout=120_000)
    page.get_by_text("No model is active yet").wait_for(timeout=30_000)
    assert "SGS v1" not in page.locator("[data-testid=stMain]").inner_text()

    process, log = worker
    job_id = job_sql.submit(store, "train", "SGS", TINY_JOB, created_by=admin["id"])
    # the page is left alone: its fragment polls the store and must show the new model by itself
    page.get_by_text("No model is active yet").wait_for(state="detached", timeout=240_000)
    # (the summary table is a canvas grid: its cells are in the DOM but not "visible")
    summary = page.locator("[data-testid=stDataFrame]").first
    summary.get_by_text("SGS v1").first.wait_for(state="attached", timeout=60_000)
    # the worker publishes the version, then marks the job finished: wait for that
    wait_until(lambda: job_sql.get(store, job_id)["status"] in job_sql.FINAL, 60, f"job #{job_id} to end")
    row = job_sql.get(store, job_id)
    assert row["status"] == "succeeded", (row["error"], log.read_text()[-2000:])
    assert process.poll() is None  # the worker keeps running for the next job
    version = registry.active_version(store, "SGS")
    assert version["version"] == 1

    open_page(page, "Predict & explain", timeout=120_000)
    page.get_by_text("Occlusion: evidence for grade").wait_for(timeout=120_000)
    settle(page, timeout=120_000)
    main = page.locator("[data-testid=stMain]")
    assert "SGS v1: grade" in main.inner_text()
    sizes = images_loaded(page, at_least=2)  # the original and its overlay, decoded
    assert len(sizes) >= 2
    assert all(w > 0 and h > 0 for w, h in sizes[:2]), sizes
    store.close()
