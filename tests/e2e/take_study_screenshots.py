"""Screenshots of reader studies, taken in headless Chromium against a real ``streamlit run`` server.
Writes docs/app-study-calibration.png (a calibration read's feedback), docs/app-study-aided.png
(an aided read: the model's grade, probabilities and attribution beside the scan),
docs/app-admin-studies.png (the Admin page's Studies tab: studies, progress, calibration curves),
docs/app-study-analysis.png (the demo study's MRMC analysis), docs/app-study-gloess.png (patient
GLOESS agreement) and docs/app-readers.png (readers and models against the reference).

  python tests/e2e/take_study_screenshots.py --data /tmp/demo   # a copy of a demo project
  python tests/e2e/take_study_screenshots.py                    # builds a small demo first

Modalities without an active model are trained first (fast preset, 2 epochs), so the aided read
has a model to show. The demo's own study is closed; an open one of a few SPD cases is designed
for a reader made here.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e import harness  # noqa: E402
from tests.e2e.take_results_screenshots import open_project, prepare_models  # noqa: E402

VIEWPORT = {"width": 1440, "height": 1000}
TALL = {"width": 1440, "height": 1700}
READER, PASSWORD = "study-reader", "study-reader-password-1"
STUDY = "SPD aided reading (screenshot)"


def prepare_study(root: Path) -> tuple[str, int]:
    """A reader with a password and an open sequential study of 4 SPD test cases that the
    active SPD model predicted; the demo's calibration set's name."""
    from rascore import auth
    from rascore.services import calibration, study, study_design
    from rascore.store import accounts

    project = open_project(root)
    store = project.store
    try:
        admin = accounts.user(store, "demo-admin")
        if accounts.user(store, READER) is None:
            auth.add_user(store, READER, "reader", "junior", PASSWORD, rounds=4)
        sets = calibration.calibration_sets(store, admin)
        version = store.value("SELECT model_version_id FROM active_models WHERE modality = 'SPD'")
        cases = [
            int(r["item_id"])
            for r in store.rows(
                "SELECT p.item_id FROM predictions p JOIN items i ON i.id = p.item_id"
                " WHERE p.model_version_id = ? AND i.cohort = 'test1' ORDER BY p.item_id LIMIT 4",
                (version,),
            )
        ]
        made = study_design.design_study(
            store, admin, STUDY, design="sequential", readers={READER: "junior"}, items=cases, seed=3
        )
        study.open_study(store, admin, made.study_id)
        return sets[0]["name"], made.study_id
    finally:
        store.close()


def take(root: Path, out: Path, passwords: dict[str, str], calibration_set: str) -> None:
    from playwright.sync_api import sync_playwright

    with harness.serve(root, root.parent / "streamlit.log") as server, sync_playwright() as pw:
        browser = harness.launch(pw)
        page = browser.new_page(viewport=VIEWPORT)
        harness.sign_in(page, server.url, READER, PASSWORD)
        harness.open_page(page, "Label")

        # calibration: a read one grade off the reference, then its feedback
        harness.choose(page, "Read", f"Calibration: {calibration_set}")
        page.get_by_text("item 1 of").wait_for(timeout=60_000)
        page.keyboard.press("3")
        page.keyboard.press("Shift+3")
        page.keyboard.press("Enter")
        page.get_by_text("the reference").first.wait_for(timeout=60_000)
        harness.images_loaded(page)
        harness.settle(page)
        harness.shoot(page, out, "app-study-calibration.png")

        # the study: its first case unaided, then the same case aided with the model beside it
        page.set_viewport_size(TALL)
        harness.choose(page, "Read", f"Study: {STUDY}")
        page.get_by_text("this read: unaided").wait_for(timeout=60_000)
        page.keyboard.press("1")
        page.keyboard.press("Shift+1")
        page.keyboard.press("Enter")
        page.get_by_text("The model's reading", exact=True).wait_for(timeout=60_000)
        page.locator("[data-testid=stImage] img").nth(1).wait_for(timeout=300_000)  # the overlay
        harness.images_loaded(page, at_least=2, timeout=300_000)
        harness.settle(page, timeout=300_000)
        harness.shoot(page, out, "app-study-aided.png")

        page = browser.new_page(viewport=TALL)
        harness.sign_in(page, server.url, "demo-admin", passwords["demo-admin"])
        harness.open_page(page, "Admin")
        page.get_by_role("tab", name="Studies").click()
        page.locator("[data-testid=stPlotlyChart]").first.wait_for(timeout=60_000)
        harness.settle(page)
        harness.shoot(page, out, "app-admin-studies.png")

        harness.open_page(page, "Reader study", timeout=120_000)
        harness.choose(page, "Study", "Demo study", area="stMain", timeout=120_000)
        page.get_by_text("Aided against unaided reading").wait_for(timeout=120_000)
        page.locator("[data-testid=stPlotlyChart]").first.wait_for(timeout=60_000)
        harness.settle(page)
        harness.shoot(page, out, "app-study-analysis.png")

        page.get_by_role("tab", name="Patient GLOESS").click()
        page.get_by_text("Joints per patient", exact=True).wait_for(timeout=120_000)
        harness.choose(page, "Bland-Altman plot of", "model:SPD", area="stMain", timeout=120_000)
        harness.settle(page)
        harness.shoot(page, out, "app-study-gloess.png")

        page.get_by_role("tab", name="Readers and models").click()
        page.locator("[data-testid=stPlotlyChart]:visible").first.wait_for(timeout=120_000)
        harness.settle(page)
        harness.shoot(page, out, "app-readers.png")
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="demo project to copy (default: build a small demo)")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder of the PNGs")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rascore-study-shots-"))
    try:
        root = work / "project"
        if args.data:
            harness.copy_project(Path(args.data), root, copy_models=True)
            passwords = harness.set_passwords(root, ("demo-expert", "demo-admin"))
        else:
            passwords = harness.build_demo_project(root, "small")
        prepare_models(root)
        calibration_set, _ = prepare_study(root)
        take(root, out, passwords, calibration_set)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
