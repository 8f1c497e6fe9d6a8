"""Screenshots of the Train (a retraining running live), Dashboard and Reader-study pages, taken in
headless Chromium against a real ``streamlit run`` server and a real ``rascore worker`` process.
Writes docs/app-train.png, docs/app-dashboard.png, docs/app-readers.png and docs/app-predict.png
(``--only predict``: the last alone, without the live retraining).

  python tests/e2e/take_results_screenshots.py --data /tmp/dash1   # a copy of a demo project
  python tests/e2e/take_results_screenshots.py                     # builds a small demo first

Modalities without an active model are trained first (fast preset, 2 epochs), and the Doppler
models are evaluated with the colour-fraction baseline, so every panel has something to show.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import cli_env  # noqa: E402
from tests.e2e import harness  # noqa: E402

VIEWPORT = {"width": 1440, "height": 1000}
TALL = {"width": 1440, "height": 1500}  # the dashboard's tables and forest plot on one screen
RASCORE = [sys.executable, "-m", "rascore"]


def open_project(root: Path):
    from rascore.config import Settings
    from rascore.project import Project

    return Project(
        Settings(db_path=root / "rascore.db", data_dir=root, models_dir=root / "models", device="cpu")
    )


def prepare_models(root: Path) -> None:
    """Train what has no active model (tiny runs) and store the Doppler baselines."""
    from rascore.store import registry

    project = open_project(root)
    env = cli_env(root)
    for code in ("SGS", "DGS", "SPD", "DPD"):
        row = registry.active_version(project.store, code)
        if row is None:
            print(f"training {code} (fast, 2 epochs)", flush=True)
            subprocess.run(
                [
                    *RASCORE,
                    "train",
                    "--modality",
                    code,
                    "--preset",
                    "fast",
                    "--epochs",
                    "2",
                    "--device",
                    "cpu",
                ],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            row = registry.active_version(project.store, code)
        cohorts = (row["metrics"].get("test") or {}).get("cohorts") or {}
        if code in ("SPD", "DPD") and not any("baseline" in c for c in cohorts.values()):
            print(f"evaluating {code} with the colour-fraction baseline", flush=True)
            subprocess.run(
                [*RASCORE, "evaluate", "--modality", code, "--device", "cpu"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
    project.store.close()


def wait_for_epoch(root: Path, job_id: int, epoch: int, timeout: float = 600) -> None:
    """Until the job reports training in ``epoch`` (so earlier epochs' figures exist)."""
    from rascore.store import jobs as job_sql

    project = open_project(root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = job_sql.get(project.store, job_id)
        if job["status"] in job_sql.FINAL:
            raise RuntimeError(f"job {job_id} ended early: {job['status']} {job['error']}")
        if (job["progress"].get("epoch") or 0) >= epoch:
            return
        time.sleep(0.5)
    raise RuntimeError(f"job {job_id} did not reach epoch {epoch} in {timeout:.0f} s")


def shoot_predict(page, out: Path) -> None:
    """Predict & explain on a power Doppler clip: probabilities, overlay, frame importance, GIF."""
    harness.open_page(page, "Predict & explain", timeout=300_000)
    harness.choose(page, "Modality", "DPD", area="stMain", timeout=300_000)
    harness.choose(page, "Cohort", "test1", area="stMain", timeout=300_000)
    page.get_by_text("Occlusion: evidence for grade").wait_for(timeout=300_000)
    page.locator("[data-testid=stPlotlyChart]").nth(1).wait_for(timeout=60_000)
    harness.settle(page, timeout=120_000)
    harness.shoot(page, out, "app-predict.png")


def take(root: Path, out: Path, passwords: dict[str, str], only: str = "all") -> None:
    from playwright.sync_api import sync_playwright

    from rascore.store import jobs as job_sql

    env = cli_env(root)
    with harness.serve(root, root.parent / "streamlit.log") as server, sync_playwright() as pw:
        browser = harness.launch(pw)
        page = browser.new_page(viewport=VIEWPORT)
        harness.sign_in(page, server.url, "demo-admin", passwords["demo-admin"])
        if only == "predict":
            page.set_viewport_size(TALL)
            shoot_predict(page, out)
            browser.close()
            return

        harness.open_page(page, "Train")
        # the paper preset (resnet18 at 224 px) on one CPU core: epochs of a few seconds, so the
        # page's 2 s refresh sees each epoch's validation figures
        form = page.locator("[data-testid=stForm]")
        preset = page.get_by_text("Preset", exact=True)  # not "Start from", whose choices say "preset"
        form.locator("[data-testid=stSelectbox]").filter(has=preset).locator("input").click()
        page.keyboard.type("paper")
        page.keyboard.press("Enter")
        page.get_by_label("Epochs").fill("10")
        page.get_by_role("button", name="Queue SGS retraining").click()
        try:
            # the queued job's panel (the flash message lasts only until the page's next refresh)
            page.get_by_role("button", name="Cancel this job").wait_for(timeout=30_000)
        except Exception:
            page.screenshot(path=str(out / "debug-train-queue.png"))
            raise
        job_id = job_sql.listing(open_project(root).store, 1)[0]["id"]
        # the worker on one core, so that on a 2-core machine the server keeps one for the page
        worker = subprocess.Popen(
            [*RASCORE, "worker", "--once", "--heartbeat", "1"],
            env={**env, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_epoch(root, job_id, 5)
            page.get_by_text(re.compile(r"is running: epoch ([5-9]|10)/10")).wait_for(timeout=30_000)
            page.wait_for_timeout(2500)  # one more refresh of the live panel
            harness.shoot(page, out, "app-train.png")
            cancel = page.get_by_role("button", name="Cancel this job")
            if cancel.count():
                cancel.click()
            worker.wait(timeout=300)
        finally:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)

        page.set_viewport_size(TALL)
        harness.open_page(page, "Dashboard")
        page.locator("[data-testid=stPlotlyChart]").first.wait_for(timeout=60_000)
        harness.settle(page)
        harness.shoot(page, out, "app-dashboard.png")

        harness.open_page(page, "Reader study")
        page.locator("[data-testid=stPlotlyChart]").first.wait_for(timeout=60_000)
        harness.settle(page)
        harness.shoot(page, out, "app-readers.png")
        shoot_predict(page, out)
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="demo project to copy (default: build a small demo)")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder of the PNGs")
    parser.add_argument(
        "--only",
        choices=("all", "predict"),
        default="all",
        help="predict: only docs/app-predict.png (no live retraining)",
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rascore-results-shots-"))
    try:
        root = work / "project"
        if args.data:
            harness.copy_project(Path(args.data), root, copy_models=True)  # it trains into the copy
            passwords = harness.set_passwords(root, ("demo-expert", "demo-admin"))
        else:
            passwords = harness.build_demo_project(root, "small")
        prepare_models(root)
        take(root, out, passwords, args.only)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
