"""Two people, each in their own browser context, on the real server: exchange a contact link,
chat both ways in real time, send a 5 MB file, set a disappearing timer, compare safety numbers.

The pair is set up once for the module (making identities is deliberately slow: PBKDF2 with
600,000 iterations); each test then checks that no page logged an error or a CSP violation.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import PageProblems, watched_context
from .flows import (
    TIMEOUT,
    add_contact,
    create_identity,
    invite_link,
    open_first_contact,
    send_text,
    unlock,
    wait_for_message,
)
from .shots import screenshot

pytestmark = pytest.mark.browser


class Pair:
    def __init__(self, alice: Any, bob: Any, problems: PageProblems) -> None:
        self.alice, self.bob, self.problems = alice, bob, problems


@pytest.fixture(scope="module")
def pair(courier_server: str, browser: Any) -> Iterator[Pair]:
    problems = PageProblems()
    contexts = []
    pages = []
    for _ in range(2):
        context = watched_context(
            browser, problems, viewport={"width": 900, "height": 800}, accept_downloads=True
        )
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
    alice, bob = pages
    create_identity(alice, courier_server)
    create_identity(bob, courier_server)
    link = invite_link(bob)
    add_contact(alice, link, "Bob")
    yield Pair(alice, bob, problems)
    for context in contexts:
        context.close()
    assert problems.items == []


@pytest.fixture(autouse=True)
def _no_page_problems(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "pair" in request.fixturenames:
        found = request.getfixturevalue("pair").problems.items
        assert found == [], found


def test_two_people_chat_both_ways_in_real_time(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    send_text(alice, "Hello Bob, this is Alice.")
    wait_for_message(alice, "Hello Bob", "out")
    # Bob's client learns of Alice from the sealed intro: a new contact with one unread.
    bob.click("a[data-route=chats]")
    bob.get_by_test_id("contact-item").first.wait_for(timeout=TIMEOUT)
    bob.get_by_test_id("unread-count").wait_for(timeout=TIMEOUT)
    assert bob.get_by_test_id("unread-count").text_content() == "1"
    screenshot(bob, "chats")
    open_first_contact(bob)
    wait_for_message(bob, "Hello Bob, this is Alice.", "in")
    send_text(bob, "Hi Alice! Bob here.")
    wait_for_message(alice, "Hi Alice! Bob here.", "in")
    # Delivery receipts come back both ways.
    alice.locator("[data-testid=message][data-direction=out][data-state=delivered]").first.wait_for(
        timeout=TIMEOUT
    )
    bob.locator("[data-testid=message][data-direction=out][data-state=delivered]").first.wait_for(
        timeout=TIMEOUT
    )
    for i in range(3):
        send_text(alice, f"quick {i}")
    for i in range(3):
        wait_for_message(bob, f"quick {i}", "in")
    texts = bob.locator("[data-testid=message][data-direction=in] .body").all_text_contents()
    assert texts == ["Hello Bob, this is Alice.", "quick 0", "quick 1", "quick 2"]
    screenshot(alice, "conversation")


def test_a_5_mb_file_arrives_intact_with_a_progress_bar(pair: Pair, tmp_path: Path) -> None:
    alice, bob = pair.alice, pair.bob
    data = os.urandom(5 * 1024 * 1024)
    source = tmp_path / "report.bin"
    source.write_bytes(data)
    alice.get_by_test_id("file-input").set_input_files(str(source))
    progress = alice.get_by_test_id("file-progress")
    progress.wait_for(state="visible", timeout=TIMEOUT)
    alice.wait_for_function(
        "() => document.querySelector('[data-testid=file-progress]').value === 100",
        timeout=60_000,
    )
    incoming = bob.locator("[data-testid=message][data-direction=in]", has_text="report.bin")
    incoming.wait_for(timeout=TIMEOUT)
    with bob.expect_download(timeout=60_000) as download:
        incoming.get_by_test_id("file-download").click()
    received = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename == "report.bin"
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
    bob.get_by_test_id("file-progress").wait_for(state="attached")


def test_an_image_shows_a_preview(pair: Pair, tmp_path: Path) -> None:
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000100000001008020000009091683600000017"
        "49444154789c63f8cfc0f09f8101c60018d5306a10060035b01ff18a9e3a9a0000000049454e44ae426082"
    )
    image = tmp_path / "dot.png"
    image.write_bytes(png)
    pair.alice.get_by_test_id("file-input").set_input_files(str(image))
    preview = pair.bob.locator("[data-testid=message][data-direction=in] img[alt='Image: dot.png']")
    preview.wait_for(timeout=TIMEOUT)


def test_messages_disappear_after_the_timer(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    alice.get_by_test_id("disappear-select").select_option("10")
    bob.locator(".message[data-direction=system]", has_text="10 seconds").wait_for(timeout=TIMEOUT)
    assert bob.get_by_test_id("disappear-select").input_value() == "10"
    send_text(alice, "This message will vanish")
    wait_for_message(bob, "This message will vanish", "in")
    countdown = bob.locator("[data-testid=message]", has_text="will vanish").locator(".countdown")
    assert re.match(r"disappears in \d+ s", countdown.text_content() or "")
    screenshot(bob, "disappearing")
    for page in (alice, bob):
        page.locator("[data-testid=message]", has_text="will vanish").wait_for(
            state="detached", timeout=20_000
        )
    alice.get_by_test_id("disappear-select").select_option("0")
    bob.locator(".message[data-direction=system]", has_text="turned off").wait_for(timeout=TIMEOUT)


def test_both_see_the_same_safety_number_and_can_mark_it_verified(pair: Pair) -> None:
    numbers = []
    for page in (pair.alice, pair.bob):
        page.click("#conv-details")
        number = page.get_by_test_id("safety-number")
        page.wait_for_function(
            "() => (document.querySelector('[data-testid=safety-number]').dataset.digits || '')"
            ".length === 60",
            timeout=TIMEOUT,
        )
        numbers.append(number.get_attribute("data-digits"))
        shown = (number.inner_text() or "").split()
        assert len(shown) == 12 and all(re.fullmatch(r"\d{5}", g) for g in shown)
    assert numbers[0] == numbers[1]
    pair.alice.get_by_test_id("mark-verified").click()
    pair.alice.locator("#verified-state", has_text="verified this contact").wait_for()
    screenshot(pair.alice, "safety-number")
    pair.alice.click("a[data-route=chats]")
    pair.alice.locator("[data-testid=contact-item] .verified").wait_for()


def test_messages_sent_or_received_while_offline_arrive_after_reconnecting(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    open_first_contact(alice)
    open_first_contact(bob)
    before = len(pair.problems.items)
    bob.context.set_offline(True)
    send_text(alice, "Sent while Bob was offline")
    wait_for_message(alice, "Sent while Bob was offline", "out")
    bob.wait_for_timeout(1000)
    bob.context.set_offline(False)
    bob.evaluate("() => window.dispatchEvent(new Event('online'))")
    wait_for_message(bob, "Sent while Bob was offline", "in")

    alice.context.set_offline(True)
    send_text(alice, "Written while Alice was offline")
    alice.locator(
        "[data-testid=message][data-state=sending]", has_text="while Alice was offline"
    ).wait_for(timeout=TIMEOUT)
    alice.context.set_offline(False)
    wait_for_message(bob, "Written while Alice was offline", "in")
    alice.locator(
        "[data-testid=message][data-state=delivered]", has_text="while Alice was offline"
    ).wait_for(timeout=TIMEOUT)
    # Chromium itself logs the requests that fail while the network is down; those, and only
    # those, are expected here.
    during = pair.problems.items[before:]
    del pair.problems.items[before:]
    unexpected = [
        item
        for item in during
        if "ERR_INTERNET_DISCONNECTED" not in item and "WebSocket connection to" not in item
    ]
    assert unexpected == []


def test_the_conversation_reads_on_a_phone_sized_screen(pair: Pair) -> None:
    bob = pair.bob
    bob.set_viewport_size({"width": 390, "height": 844})
    bob.click("a[data-route=chats]")
    open_first_contact(bob)
    width = bob.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows sideways
    screenshot(bob, "phone-conversation")
    bob.set_viewport_size({"width": 900, "height": 800})


def test_garbage_sent_to_a_contact_link_is_ignored(pair: Pair, courier_server: str) -> None:
    """Anyone holding Bob's link can post to his intro mailbox; noise must change nothing."""
    bob = pair.bob
    link = invite_link(bob)
    raw = base64.urlsafe_b64decode(link.split("#", 1)[1] + "==")
    handle_len = raw[1]
    mailbox = raw[3 + handle_len : 3 + handle_len + raw[2 + handle_len]].decode()
    token = httpx.post(f"{courier_server}/api/v1/sessions", json={}).json()["token"]
    for size in (1024, 4096):
        answer = httpx.post(
            f"{courier_server}/api/v1/mailboxes/{mailbox}/envelopes",
            content=b"\x01" + os.urandom(size - 1),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
            },
        )
        assert answer.status_code == 201
    open_first_contact(bob)
    open_first_contact(pair.alice)
    send_text(pair.alice, "Still here after the noise")
    wait_for_message(bob, "Still here after the noise", "in")
    bob.click("a[data-route=chats]")
    assert bob.get_by_test_id("contact-item").count() == 1


def test_without_websockets_messages_still_arrive_by_polling(pair: Pair) -> None:
    """A network that drops WebSockets: the client falls back to owner-signed HTTP fetches.
    (Last in this module: Bob's context keeps refusing sockets afterwards.)"""
    alice, bob = pair.alice, pair.bob
    bob.context.route_web_socket("**/ws/v1/relay", lambda ws: ws.close())
    bob.reload()
    unlock(bob)
    bob.locator("#connection[data-state=polling]").wait_for(timeout=TIMEOUT)
    open_first_contact(bob)
    open_first_contact(alice)
    send_text(alice, "Delivered without a socket")
    wait_for_message(bob, "Delivered without a socket", "in")
    send_text(bob, "Answered without a socket")
    wait_for_message(alice, "Answered without a socket", "in")
