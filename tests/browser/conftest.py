"""Browser tests: the machine's Chromium (never a downloaded one) against the real server.

One daphne process per test session (tests/support/servers.py: a free loopback port, its own
data folder, the production command line of messenger/processes.py). Every page a test opens
records console errors and CSP violations; the `problems` fixture asserts there were none.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import ServerStack

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


@pytest.fixture(scope="session")
def courier_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """daphne with its own data folder and SQLite database (browser tests run in pass 1)."""
    # Every browser here comes from 127.0.0.1, and each person mints several sessions (relay,
    # prekeys, one per claim, one per contact sent to): far more than the default per-address
    # minting rate allows one machine. The rate limits have their own tests.
    env = {"RATELIMIT_SESSION_MINT": "100000/h"}
    with ServerStack(
        tmp_path_factory.mktemp("courier-browser"), database="sqlite", env=env
    ) as stack:
        yield stack.url()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


# Every page reports CSP violations on its console, including pages without our scripts.
# (An init script runs through DevTools, outside the page's CSP.)
CSP_WATCH = """document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));"""


def watched_context(browser: object, problems: PageProblems, **options: object) -> object:
    context = browser.new_context(**options)  # type: ignore[attr-defined]
    context.add_init_script(CSP_WATCH)
    context.on("page", problems.watch)
    return context


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
        context = watched_context(
            browser, problems, viewport={"width": 1100, "height": 800}, accept_downloads=True
        )
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
