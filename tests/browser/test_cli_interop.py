"""The browser and the Python command-line client (courier/cli.py) talk to each other through
the real server, in both directions and whichever of them starts the conversation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .flows import (
    TIMEOUT,
    add_contact,
    create_identity,
    invite_link,
    open_first_contact,
    send_text,
    wait_for_message,
)
from .shots import screenshot

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CLI_PASSPHRASE = "cli passphrase for tests"


class Cli:
    def __init__(self, home: Path, server: str) -> None:
        self.home, self.server = home, server

    def run(self, *args: str) -> str:
        env = {**os.environ, "COURIER_PASSPHRASE": CLI_PASSPHRASE}
        done = subprocess.run(
            [sys.executable, "-m", "courier.cli", "--home", str(self.home), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def texts_until(self, contact: str, wanted: str, timeout: float = 20) -> list[str]:
        """Receive until the wanted text is in the conversation; return its incoming texts.

        The conversation (`messages`) is the reference, not the events `receive` prints: a
        text fetched before its sender's reply_here is stored, but currently reported as a
        "dropped" event (its receipt cannot be queued yet)."""
        deadline = time.monotonic() + timeout
        texts: list[str] = []
        while time.monotonic() < deadline:
            self.run("receive", "--json")
            texts = [
                m["body"]
                for m in json.loads(self.run("messages", contact, "--json"))
                if m["dir"] == "in" and m["type"] == "text"
            ]
            if wanted in texts:
                return texts
            time.sleep(0.5)
        raise AssertionError(f"{wanted!r} never arrived; the conversation has {texts}")

    def first_contact(self, timeout: float = 20) -> str:
        """Receive until someone has introduced themselves; return their contact name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.run("receive", "--json")
            contacts = json.loads(self.run("contacts", "--json"))
            if contacts:
                return str(contacts[0]["name"])
            time.sleep(0.5)
        raise AssertionError("no contact arrived")

    def file_until(self, name: str, timeout: float = 30) -> Path:
        """Receive (downloading files) until the named file is saved; return its path."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.run("receive", "--json").splitlines():
                event = json.loads(line)
                if event["event"] == "download" and event["message"]["name"] == name:
                    return Path(event["text"])
            time.sleep(0.5)
        raise AssertionError(f"{name} never arrived")


@pytest.fixture
def cli(courier_server: str, tmp_path: Path) -> Cli:
    client = Cli(tmp_path / "cli-home", courier_server)
    client.run("init", "--server", courier_server)
    return client


def test_the_browser_starts_a_conversation_with_the_command_line_client(
    courier_server: str, new_context: Any, cli: Cli, tmp_path: Path
) -> None:
    page = new_context().new_page()
    create_identity(page, courier_server)
    link = cli.run("link", "--no-qr").strip()
    add_contact(page, link, "Terminal")
    send_text(page, "Hello from the browser")
    contact = cli.first_contact()
    assert "Hello from the browser" in cli.texts_until(contact, "Hello from the browser")
    cli.run("send", contact, "Hello from the terminal")
    wait_for_message(page, "Hello from the terminal", "in")
    send_text(page, "Second browser message")
    assert "Second browser message" in cli.texts_until(contact, "Second browser message")
    screenshot(page, "browser-and-cli")

    # Files both ways: the file descriptor and chunks are the same protocol on both sides.
    upload = tmp_path / "from-browser.bin"
    upload.write_bytes(os.urandom(300_000))
    page.get_by_test_id("file-input").set_input_files(str(upload))
    saved = cli.file_until("from-browser.bin")
    assert saved.read_bytes() == upload.read_bytes()
    sent = tmp_path / "from-terminal.bin"
    sent.write_bytes(os.urandom(200_000))
    cli.run("send-file", contact, str(sent))
    incoming = page.locator("[data-testid=message][data-direction=in]", has_text="from-terminal")
    incoming.wait_for(timeout=TIMEOUT)
    with page.expect_download(timeout=TIMEOUT) as download:
        incoming.get_by_test_id("file-download").click()
    assert Path(download.value.path()).read_bytes() == sent.read_bytes()


def test_the_command_line_client_starts_a_conversation_with_the_browser(
    courier_server: str, new_context: Any, cli: Cli
) -> None:
    page = new_context().new_page()
    create_identity(page, courier_server)
    link = invite_link(page)
    cli.run("add", link, "web")
    cli.run("send", "web", "Hi browser, the terminal here")
    page.click("a[data-route=chats]")
    page.get_by_test_id("contact-item").first.wait_for(timeout=TIMEOUT)
    open_first_contact(page)
    wait_for_message(page, "Hi browser, the terminal here", "in")
    send_text(page, "Hi terminal, got it")
    assert "Hi terminal, got it" in cli.texts_until("web", "Hi terminal, got it")
    # A disappearing timer the browser's menu does not offer still shows and applies.
    cli.run("timer", "web", "45")
    page.locator(".message[data-direction=system]", has_text="45 s").wait_for(timeout=TIMEOUT)
    assert page.get_by_test_id("disappear-select").input_value() == "45"
    # Both compute the same safety number.
    page.click("#conv-details")
    page.wait_for_function(
        "() => (document.querySelector('[data-testid=safety-number]').dataset.digits || '')"
        ".length === 60",
        timeout=TIMEOUT,
    )
    digits = page.get_by_test_id("safety-number").get_attribute("data-digits")
    assert digits and digits in cli.run("safety", "web", "--no-qr").replace(" ", "").replace(
        "\n", ""
    )
