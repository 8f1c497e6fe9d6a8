"""Screenshots of the web app for the README tour, taken in headless Chromium against a real
server: sign-in, labelling a still, labelling a power Doppler item, adjudication with the
agreement heatmap, and the admin page. Writes PNGs into docs/.

  python tests/e2e/take_screenshots.py --data data     # a copy of an existing demo project
  python tests/e2e/take_screenshots.py                 # builds a small demo slice first
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

VIEWPORT = {"width": 1440, "height": 960}


def take(root: Path, out: Path, passwords: dict[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    with harness.serve(root, root.parent / "streamlit.log") as server, sync_playwright() as pw:
        browser = harness.launch(pw)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(server.url)
        harness.settle(page)
        page.get_by_label("User name").fill("demo-reader")
        harness.shoot(page, out, "app-sign-in.png", pause_ms=400)
        page.get_by_label("Password", exact=True).fill(passwords["demo-reader"])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Signed in as demo-reader").wait_for()
        harness.open_page(page, "Label")
        harness.choose(page, "Modality", "SGS")
        page.keyboard.press("2")
        harness.settle(page)
        harness.shoot(page, out, "app-label-still.png", pause_ms=400)
        harness.choose(page, "Modality", "SPD")
        page.keyboard.press("1")
        harness.settle(page)
        page.keyboard.press("Shift+2")
        harness.settle(page)
        harness.shoot(page, out, "app-label-doppler.png", pause_ms=400)
        page.close()

        page = browser.new_page(viewport=VIEWPORT)
        harness.sign_in(page, server.url, "demo-expert", passwords["demo-expert"])
        harness.open_page(page, "Adjudicate")
        harness.shoot(page, out, "app-adjudicate.png", pause_ms=400)
        page.get_by_role("tab", name="Pairwise agreement").click()
        page.locator("[data-testid=stPlotlyChart]").wait_for()
        harness.settle(page)
        harness.shoot(page, out, "app-agreement.png", pause_ms=400)
        page.close()

        page = browser.new_page(viewport=VIEWPORT)
        harness.sign_in(page, server.url, "demo-admin", passwords["demo-admin"])
        harness.open_page(page, "Admin")
        harness.shoot(page, out, "app-admin.png", pause_ms=400)
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="demo project to copy (default: build a small slice)")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder of the PNGs")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rascore-shots-"))
    try:
        root = work / "project"
        if args.data:
            harness.copy_project(Path(args.data), root)
            passwords = harness.set_passwords(root, ("demo-reader", "demo-expert", "demo-admin"))
        else:
            passwords = harness.build_demo_project(root)
        take(root, out, passwords)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
