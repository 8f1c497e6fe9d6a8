"""Real-browser harness shared by the end-to-end tests and bench/bench_label_latency.py: build a
small demo project, serve the app with ``streamlit run`` on a free port, drive Debian's Chromium
with Playwright and wait for Streamlit to settle the way its own e2e suite does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rascore.ports import free_port
from tests.conftest import cli_env

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RASCORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# A small slice of the simulated cohort: enough of every modality and grade for the pages.
E2E_SIZE = {"train": 24, "test1": 8, "test2": 8}


def build_demo_project(root: Path, size: dict[str, int] | str = E2E_SIZE, seed: int = 0) -> dict:
    """Build a demo project (the real ``build_demo``) in ``root``; the accounts' passwords."""
    from rascore.config import Settings
    from rascore.demo import build_demo
    from rascore.project import Project
    from rascore.synth import cohort

    settings = Settings(db_path=root / "rascore.db", data_dir=root, models_dir=root / "models", device="cpu")
    name = size if isinstance(size, str) else "e2e"
    added = name not in cohort.SIZES
    if added:
        cohort.SIZES[name] = dict(size)
    try:
        result = build_demo(Project(settings), size=name, seed=seed, workers=1, password_rounds=4)
    finally:
        if added:
            del cohort.SIZES[name]
    return result.accounts


def copy_project(source: Path, target: Path, copy_models: bool = False) -> None:
    """A working copy of a project: the database through SQLite's backup API, the read-only media,
    cache, truth and key linked; the model registry linked too, or copied with ``copy_models``
    (when the copy trains new versions)."""
    import shutil
    import sqlite3

    target.mkdir(parents=True)
    with sqlite3.connect(source / "rascore.db") as src, sqlite3.connect(target / "rascore.db") as dst:
        src.backup(dst)
    for name in ("media", "cache", "truth", "models", "pseudonym.key"):
        if not (source / name).exists():
            continue
        if name == "models" and copy_models:
            shutil.copytree(source / name, target / name)
        else:
            (target / name).symlink_to((source / name).resolve())


def set_passwords(root: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Give the named accounts of the project in ``root`` known passwords (cheap bcrypt rounds)."""
    from rascore import auth
    from rascore.store import Store

    store = Store(root / "rascore.db")
    passwords = {name: f"screenshot-{name}" for name in names}
    for name, password in passwords.items():
        auth.set_password(store, name, password, rounds=4)
    store.close()
    return passwords


@dataclass
class Server:
    """A running ``streamlit run app.py``."""

    url: str
    process: subprocess.Popen
    log: Path


@contextmanager
def serve(root: Path, log: Path, timeout: float = 60.0):
    """Serve the app on a free port against the project in ``root``; stopped on exit."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
    ]
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=cli_env(root), stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer in {timeout:.0f} s")
            time.sleep(0.25)
        yield Server(url, process, log)
    finally:
        stop(process)


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate a child process; kill it if it has not gone after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def launch(playwright):
    """Headless Chromium from the system (``playwright install`` is not used)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def settle(page, timeout: float = 30_000) -> None:
    """Wait until the app is connected and no script is running (Streamlit's own e2e check)."""
    page.wait_for_selector("[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=timeout)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=timeout)


def sign_in(page, url: str, name: str, password: str) -> None:
    """Open the app and sign in through the form."""
    page.goto(url)
    settle(page)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {name}").wait_for(timeout=30_000)
    settle(page)


def open_page(page, title: str, timeout: float = 30_000) -> None:
    """Go to one of the app's pages through the sidebar navigation (``timeout`` ms for its first
    run to finish: longer for pages that compute, on a loaded machine)."""
    page.locator("[data-testid=stSidebarNav]").get_by_role("link", name=title).click()
    page.wait_for_function(
        f"() => document.title.includes({title!r}) || "
        f"document.querySelector('[data-testid=stSidebarNav] a[aria-current=page]')"
        f"?.textContent.includes({title!r})",
        timeout=max(timeout, 30_000),
    )
    settle(page, timeout=timeout)


def choose(page, label: str, option: str, area: str = "stSidebar", timeout: float = 30_000) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` (in the sidebar, or ``area="stMain"``),
    wait for the run it starts, and leave the keyboard to the page."""
    box = page.locator(f"[data-testid={area}] [data-testid=stSelectbox]").filter(has_text=label)
    box.locator("input").click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")
    settle(page, timeout=timeout)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")


def shoot(page, out: Path, name: str, pause_ms: int = 600) -> None:
    """Save the page as it is now (after ``pause_ms`` for charts to finish drawing)."""
    page.wait_for_timeout(pause_ms)
    page.screenshot(path=str(out / name))
    print(f"wrote {out / name}", flush=True)


def images_loaded(page, at_least: int = 1, timeout: float = 60_000) -> list[list[int]]:
    """Wait until the main area shows ``at_least`` images and the first ``at_least`` are decoded
    (complete, natural size known); return every image's natural [width, height] (0 until loaded)."""
    page.wait_for_function(
        """n => {
          const imgs = [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')];
          return imgs.length >= n && imgs.slice(0, n).every(i => i.complete && i.naturalWidth > 0);
        }""",
        arg=at_least,
        timeout=timeout,
    )
    return page.locator("[data-testid=stMain] [data-testid=stImage] img").evaluate_all(
        "els => els.map(e => [e.naturalWidth, e.naturalHeight])"
    )


def wait_until(condition, timeout: float, what: str, poll: float = 0.2):
    """Poll ``condition()`` (e.g. a store read) until it returns something true, and return it;
    fail saying ``what`` was awaited after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(poll)
    return value


def heading(page) -> str:
    """The labelling page's item heading (e.g. 'Item #12 · SPD (...) · MCP2 R')."""
    return page.locator("h4").first.inner_text()


def item_id_of(text: str) -> int:
    """The item id in a heading."""
    return int(text.split("#", 1)[1].split(" ", 1)[0])
