"""Create an identity, lock, unlock (and refuse a wrong passphrase), delete everything."""

from __future__ import annotations

import base64

import httpx
import pytest

from .flows import PASSPHRASE, TIMEOUT, create_identity, invite_link, unlock
from .shots import screenshot

pytestmark = pytest.mark.browser


def _claim_status(base: str, link_payload: str) -> tuple[int, str]:
    """Claim the bundle named in a contact link, as a stranger would (outside the browser)."""
    raw = base64.urlsafe_b64decode(link_payload + "=" * (-len(link_payload) % 4))
    handle = raw[2 : 2 + raw[1]].decode()
    token = httpx.post(f"{base}/api/v1/sessions", json={}).json()["token"]
    answer = httpx.get(f"{base}/api/v1/keys/{handle}", headers={"Authorization": f"Bearer {token}"})
    code = answer.json().get("error", {}).get("code", "") if answer.status_code != 200 else ""
    return answer.status_code, code


def test_a_person_creates_an_identity_locks_and_unlocks_it(courier_server, new_context):
    page = new_context().new_page()
    page.goto(courier_server + "/")
    screenshot(page, "landing")
    page.goto(courier_server + "/app")
    screenshot(page, "create-identity")
    create_identity(page, courier_server)
    link = invite_link(page)
    assert link.startswith("https://127.0.0.1:") and "/c#" in link
    screenshot(page, "add-contact")

    page.get_by_test_id("lock").click()
    page.wait_for_selector("#screen-unlock:not([hidden])", timeout=TIMEOUT)
    unlock(page, "not the passphrase")
    page.locator("#error", has_text="passphrase is not right").wait_for(timeout=TIMEOUT)
    screenshot(page, "unlock")
    unlock(page, PASSPHRASE)
    page.wait_for_selector("#screen-chats:not([hidden])", timeout=TIMEOUT)
    assert invite_link(page) == link  # the same identity came back

    # Nothing readable is stored: the passphrase-derived key opens the records.
    stored = page.evaluate(
        """async () => {
          const db = await new Promise((ok, ko) => { const r = indexedDB.open('courier');
            r.onsuccess = () => ok(r.result); r.onerror = ko; });
          const all = (store) => new Promise((ok) => { const r = db.transaction(store)
            .objectStore(store).getAll(); r.onsuccess = () => ok(r.result); });
          const records = await all('records'), keys = await all('keys');
          db.close();
          return JSON.stringify([records, keys].map((list) => list.map((r) =>
            Object.keys(r).sort().join(','))));
        }"""
    )
    assert stored.count("ct,iv") >= 2 and "identity" not in stored

    handle = link.split("#", 1)[1]
    assert _claim_status(courier_server, handle) == (200, "")
    page.click("a[data-route=settings]")
    screenshot(page, "settings")
    wipe = page.get_by_test_id("delete-everything")
    page.click("#screen-settings details summary")
    wipe.click()
    wipe.click()
    page.wait_for_selector("#screen-create:not([hidden])", timeout=TIMEOUT)
    # The server no longer hands out the bundle behind the old contact link.
    claim = _claim_status(courier_server, handle)
    assert claim == (404, "unknown_handle")


def test_the_security_and_policy_pages_render(courier_server, new_context):
    page = new_context().new_page()
    for path, name in (("/security", "security"), ("/policy", "policy")):
        page.goto(courier_server + path)
        page.wait_for_selector("h1")
        screenshot(page, name)


def test_the_app_locks_itself_after_the_chosen_idle_time(courier_server, new_context):
    page = new_context().new_page()
    page.clock.install()
    create_identity(page, courier_server)
    page.click("a[data-route=settings]")
    page.select_option("#autolock", "1")
    page.click("#settings-form button[type=submit]")
    page.locator("#status", has_text="Settings saved").wait_for(timeout=TIMEOUT)
    page.clock.fast_forward("00:50")
    assert page.locator("#screen-settings").is_visible()
    page.clock.fast_forward("00:20")
    page.wait_for_selector("#screen-unlock:not([hidden])", timeout=TIMEOUT)


def test_opening_a_contact_link_fills_in_add_contact(courier_server, new_context):
    page = new_context().new_page()
    create_identity(page, courier_server)
    link = invite_link(page)
    # What a browser does with the link: the fragment stays on this side.
    page.goto(link.replace("https://", "http://"))
    unlock(page)
    page.wait_for_selector("#screen-add:not([hidden])", timeout=TIMEOUT)
    assert page.get_by_test_id("add-contact-input").input_value() == link
    assert page.url.endswith("/app#/add")
    page.get_by_test_id("add-contact-submit").click()
    page.locator("#error", has_text="your own contact link").wait_for(timeout=TIMEOUT)


def test_the_app_works_with_the_keyboard_alone(courier_server, new_context):
    page = new_context().new_page()
    page.goto(courier_server + "/app")
    page.wait_for_selector("#screen-create:not([hidden])")
    # The passphrase field has the focus when the page opens.
    page.keyboard.type(PASSPHRASE)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSPHRASE)
    page.keyboard.press("Enter")
    page.wait_for_selector("#screen-chats:not([hidden])", timeout=TIMEOUT)

    def tab_to(selector: str) -> None:
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate(f"() => document.activeElement.matches({selector!r})"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("a[data-route=add]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#screen-add:not([hidden])", timeout=TIMEOUT)
    tab_to("#copy-invite")
    tab_to("[data-testid=add-contact-input]")
    page.keyboard.type("not a link")
    page.keyboard.press("Enter")
    page.locator("#error", has_text="does not look like a Courier contact link").wait_for(
        timeout=TIMEOUT
    )
    tab_to("#lock")
    page.keyboard.press("Enter")
    page.wait_for_selector("#screen-unlock:not([hidden])", timeout=TIMEOUT)


def test_a_second_tab_of_the_same_browser_steps_aside(courier_server, new_context):
    context = new_context()
    first = context.new_page()
    create_identity(first, courier_server)
    second = context.new_page()
    second.goto(courier_server + "/app")
    second.locator("#loading", has_text="already open in another tab").wait_for(timeout=TIMEOUT)
    assert second.locator("#screen-unlock").is_hidden()


def test_creating_an_identity_without_the_server_fails_plainly_and_can_be_retried(
    courier_server, new_context, problems
):
    context = new_context()
    page = context.new_page()
    page.goto(courier_server + "/app")
    page.wait_for_selector("#screen-create:not([hidden])")
    # The keys are made offline; publishing them needs the server.
    page.route("**/api/v1/keys/**", lambda route: route.abort())
    page.get_by_test_id("passphrase").first.fill(PASSPHRASE)
    page.fill("#create-confirm", PASSPHRASE)
    page.get_by_test_id("create-identity").click()
    page.locator("#error", has_text="Cannot reach the server").wait_for(timeout=TIMEOUT)
    page.unroute("**/api/v1/keys/**")
    # Chromium logs the request we made fail; that one, and only that one, is expected.
    assert [item for item in problems.items if "net::ERR_FAILED" not in item] == []
    problems.items.clear()
    page.get_by_test_id("create-identity").click()
    page.wait_for_selector("#screen-chats:not([hidden])", timeout=TIMEOUT)
