"""Browser tests: the machine's Chromium (never a downloaded one) against the real server.

One daphne process per test session, on a free loopback port with its own data folder, started
with the same command line as production (messenger/processes.py). Every page a test opens
records console errors and CSP violations; the `browser_page` fixture asserts there were none.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from messenger.processes import web_command

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def courier_server() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="courier-browser-") as data:
        env = {**os.environ, "MESSENGER_DATA_DIR": data}
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        port = _free_port()
        proc = subprocess.Popen(web_command("127.0.0.1", port), cwd=ROOT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class PageProblems:
    """Console errors and CSP violations seen by the pages of one test."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def watch(self, page: object) -> None:
        page.on(  # type: ignore[attr-defined]
            "console",
            lambda msg: (
                self.items.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" or "Content Security Policy" in msg.text
                else None
            ),
        )
        page.on("pageerror", lambda exc: self.items.append(f"page error: {exc}"))  # type: ignore[attr-defined]
        # securitypolicyviolation events are reported through a console message by our own
        # UI module (static/js/ui.js) and by Chromium itself; both end up above.


@pytest.fixture
def problems() -> Iterator[PageProblems]:
    found = PageProblems()
    yield found
    assert found.items == [], found.items


@pytest.fixture
def new_context(browser: object, problems: PageProblems) -> Iterator[object]:
    """A factory of fresh browser contexts (separate storage: separate people)."""
    contexts = []

    def make() -> object:
        context = browser.new_context(viewport={"width": 1100, "height": 800})  # type: ignore[attr-defined]
        context.on("page", problems.watch)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
