"""Steps a person takes in the web client, for the browser tests (through data-testid hooks)."""

from __future__ import annotations

from typing import Any

PASSPHRASE = "correct horse battery staple"
TIMEOUT = 20_000


def create_identity(page: Any, base: str, passphrase: str = PASSPHRASE) -> None:
    page.goto(base + "/app")
    page.get_by_test_id("passphrase").first.fill(passphrase)
    page.fill("#create-confirm", passphrase)
    page.get_by_test_id("create-identity").click()
    page.wait_for_selector("#screen-chats:not([hidden])", timeout=TIMEOUT)


def unlock(page: Any, passphrase: str = PASSPHRASE) -> None:
    page.fill("#unlock-passphrase", passphrase)
    page.get_by_test_id("unlock").click()


def invite_link(page: Any) -> str:
    page.click("a[data-route=add]")
    link = page.get_by_test_id("invite-link")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=invite-link]').textContent.includes('/c#')",
        timeout=TIMEOUT,
    )
    return str(link.text_content())


def add_contact(page: Any, link: str, name: str) -> None:
    page.click("a[data-route=add]")
    page.get_by_test_id("add-contact-input").fill(link)
    page.fill("#add-name", name)
    page.get_by_test_id("add-contact-submit").click()
    page.wait_for_selector("#screen-conversation:not([hidden])", timeout=TIMEOUT)


def open_first_contact(page: Any) -> None:
    page.click("a[data-route=chats]")
    page.get_by_test_id("contact-item").first.click(timeout=TIMEOUT)
    page.wait_for_selector("#screen-conversation:not([hidden])", timeout=TIMEOUT)


def send_text(page: Any, text: str) -> None:
    page.get_by_test_id("compose-input").fill(text)
    page.get_by_test_id("send-button").click()


def wait_for_message(page: Any, text: str, direction: str) -> None:
    page.locator(f"[data-testid=message][data-direction={direction}]", has_text=text).wait_for(
        timeout=TIMEOUT
    )
