"""The client library against a real server: first contact, pairwise mailboxes, replays,
deduplication, prekey top-up and rotation, files, timers, reconnects."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from courier.api import Push, b64u, unb64u
from courier.client import ClientError, Courier, Event, Queued, _signer
from courier.crypto.link import parse_contact_link
from courier.store import WrongPassphrase
from tests.cli.conftest import connect
from tests.support.servers import ServerStack, free_port

# Every test here talks to real server processes (tests/cli/conftest.py, `stack`).
pytestmark = pytest.mark.e2e


def texts(events: list[Event]) -> list[str]:
    return [e.message["body"] for e in events if e.kind == "message"]


class Recorder:
    """Wraps the transport's send to keep a copy of what was sent (the server is real)."""

    def __init__(self, client: Courier) -> None:
        self.sent: list[tuple[str, bytes]] = []
        real = client.api.send_envelope

        def send(token: str, send_id: str, envelope: bytes, ttl: int | None = None) -> dict:
            self.sent.append((send_id, envelope))
            return real(token, send_id, envelope, ttl)

        client.api.send_envelope = send  # type: ignore[method-assign]


def test_two_clients_meet_through_a_link_and_talk_both_ways(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    alice.send_text("bob", "hello bob")
    bob.send_text("alice", "hello alice")
    assert texts(bob.receive()) == ["hello bob"]
    assert texts(alice.receive()) == ["hello alice"]
    assert [m["body"] for m in alice.messages("bob")] == ["hello bob", "hello alice"]
    assert [m["dir"] for m in alice.messages("bob")] == ["out", "in"]


def test_after_the_first_reply_messages_go_to_the_pairwise_mailbox(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    intro_mailbox = parse_contact_link(bob.contact_link()).intro_mailbox
    recorder = Recorder(alice)
    connect(alice, bob)
    alice.send_text("bob", "now pairwise")
    assert texts(bob.receive()) == ["now pairwise"]
    (first, _), (second, _) = recorder.sent
    assert first == intro_mailbox
    assert second != intro_mailbox
    assert second == bob._state()["contacts"]["alice"]["mailbox"]["send_id"]
    # Each side sends to the other through a mailbox of its own, on its own session.
    a, b = alice._state()["contacts"]["bob"], bob._state()["contacts"]["alice"]
    assert a["their_mailbox"] == b["mailbox"]["send_id"]
    assert b["their_mailbox"] == a["mailbox"]["send_id"]
    assert a["session_api"]["token"] != alice._state()["home_session"]["token"]


def test_messages_sent_before_the_first_reply_reach_the_same_contact(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    alice.add_contact(bob.contact_link(), "bob")
    alice.send_text("bob", "are you there?")
    alice.send_text("bob", "hello?")
    events = bob.receive()
    assert [e.kind for e in events].count("contact") == 1
    assert texts(events) == ["are you there?", "hello?"]
    assert len(bob.contacts()) == 1


def test_a_replayed_intro_does_not_make_a_new_contact(make_client, stack: ServerStack) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    recorder = Recorder(alice)
    alice.add_contact(bob.contact_link(), "bob")
    assert [e.kind for e in bob.receive()] == ["contact"]
    ((intro_mailbox, intro),) = recorder.sent
    # Someone who saw the envelope (the server, say) posts it again.
    token = alice.api.mint_session().token
    alice.api.send_envelope(token, intro_mailbox, intro)
    events = bob.receive()
    assert [e.kind for e in events] == ["dropped"]
    assert len(bob.contacts()) == 1


def test_an_envelope_redelivered_after_a_lost_ack_is_dropped_by_its_id(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    alice.send_text("bob", "only once")
    # Bob stores the envelope, then "crashes" before acknowledging it.
    box = bob._state()["contacts"]["alice"]["mailbox"]
    signer = _signer(unb64u(box["owner"]))
    fetched = bob._with_home(
        lambda token: bob.api.fetch_envelopes(token, box["receive_id"], signer)
    )["envelopes"]
    assert len(fetched) == 1
    item = fetched[0]
    push = Push(
        unb64u(item["id"]),
        unb64u(box["receive_id"]),
        int(time.time()) + 60,
        unb64u(item["envelope"]),
    )
    events, ack = bob._handle(push)
    assert texts(events) == ["only once"] and ack
    # The server delivers it again; the client acknowledges it and shows nothing new.
    assert bob.receive() == []
    assert [m["body"] for m in bob.messages("alice")] == ["only once"]
    again = bob._with_home(lambda token: bob.api.fetch_envelopes(token, box["receive_id"], signer))[
        "envelopes"
    ]
    assert again == []


def test_a_tampered_envelope_changes_nothing_and_is_dropped(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    recorder = Recorder(alice)
    alice.send_text("bob", "original")
    ((_, envelope),) = recorder.sent
    receive_id = unb64u(bob._state()["contacts"]["alice"]["mailbox"]["receive_id"])
    before = bob._state()["contacts"]["alice"]["ratchet"]
    bad = bytearray(envelope)
    bad[100] ^= 1
    events, ack = bob._handle(Push(os.urandom(16), receive_id, int(time.time()), bytes(bad)))
    assert [e.kind for e in events] == ["dropped"] and ack
    assert bob._state()["contacts"]["alice"]["ratchet"] == before
    assert texts(bob.receive()) == ["original"]


def test_one_time_prekeys_are_topped_up_when_they_run_low(make_client) -> None:
    bob = make_client("bob")
    handle = bob._state()["handle"]
    for _ in range(12):
        token = bob.api.mint_session().token
        claimed = bob.api.claim_bundle(token, handle)
        assert claimed["one_time_prekey"] is not None
    counts = bob.maintain_prekeys()
    assert counts["one_time_prekeys"] >= 20 and counts["pq_one_time_prekeys"] >= 20
    # Nothing to do the second time.
    assert bob.maintain_prekeys()["one_time_prekeys"] == counts["one_time_prekeys"]


def test_contact_works_on_last_resort_keys_when_one_time_prekeys_are_gone(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    handle = bob._state()["handle"]
    for _ in range(20):
        bob.api.claim_bundle(bob.api.mint_session().token, handle)
    connect(alice, bob)
    alice.send_text("bob", "still works")
    assert texts(bob.receive()) == ["still works"]


def test_a_stale_signed_prekey_is_rotated_and_the_old_one_still_opens_intros(
    make_client,
) -> None:
    alice, bob, carol = make_client("alice"), make_client("bob"), make_client("carol")
    old = bob._state()["prekeys"]["signed_current"]
    # Alice claims the bundle with the old signed prekey; Bob reads her intro only later.
    alice.add_contact(bob.contact_link(), "bob")
    time.sleep(3.5)  # the test server flags a signed prekey as stale after 2 s
    counts = bob.maintain_prekeys()
    new = bob._state()["prekeys"]["signed_current"]
    assert new != old and counts["signed_prekey_id"] == new
    assert not counts["signed_prekey_stale"]
    assert str(old) in bob._state()["prekeys"]["retired"]
    assert [e.kind for e in bob.receive()] == ["contact"]
    # A contact made after the rotation uses the new signed prekey.
    carol.add_contact(bob.contact_link(), "bob")
    assert [e.kind for e in bob.receive()] == ["contact"]
    alice.receive()
    carol.receive()
    alice.send_text("bob", "from alice")
    carol.send_text("bob", "from carol")
    assert sorted(texts(bob.receive())) == ["from alice", "from carol"]


def test_a_file_arrives_whole_and_its_digest_matches(make_client, tmp_path: Path) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    data = os.urandom(2_500_000)
    source = tmp_path / "report.pdf"
    source.write_bytes(data)
    progress: list[tuple[int, int]] = []
    alice.send_file("bob", source, progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (len(data), len(data))
    events = bob.receive()
    (saved,) = [Path(e.text) for e in events if e.kind == "download"]
    assert saved.read_bytes() == data
    assert saved.name == "report.pdf"


def test_a_file_name_from_a_peer_cannot_escape_the_downloads_folder(
    make_client, tmp_path: Path
) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    source = tmp_path / "x"
    source.write_bytes(b"payload")
    real = alice._queue

    def rename_file(state, name, message):
        from dataclasses import replace

        from courier.crypto.messages import FileMessage

        if isinstance(message, FileMessage):
            message = replace(message, name="../../../etc/passwd")
        return real(state, name, message)

    alice._queue = rename_file  # type: ignore[method-assign]
    alice.send_file("bob", source)
    (saved,) = [Path(e.text) for e in bob.receive() if e.kind == "download"]
    assert saved.parent == bob.downloads / "alice"
    assert saved.read_bytes() == b"payload"


def test_the_timer_makes_messages_disappear_on_both_sides(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    alice.set_timer("bob", 2)
    alice.send_text("bob", "self-destructing")
    events = bob.receive()
    assert [e.kind for e in events] == ["timer", "message"]
    assert bob.contacts()[0]["timer"] == 2
    bob.send_text("alice", "me too")
    assert texts(alice.receive()) == ["me too"]
    time.sleep(2.2)
    assert alice.messages("bob") == [] and bob.messages("alice") == []
    alice.set_timer("bob", 0)
    alice.send_text("bob", "kept")
    bob.receive()
    time.sleep(1.1)
    assert [m.get("body") for m in bob.messages("alice")] == [None, "kept"]


def test_listen_pushes_messages_and_survives_a_server_restart(
    make_client, stack: ServerStack
) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    got: list[Event] = []
    statuses: list[str] = []
    stop = threading.Event()
    listener = Courier(bob.home, "passphrase of bob")
    thread = threading.Thread(
        target=listener.listen,
        args=(got.append,),
        kwargs={"stop": stop.is_set, "on_status": statuses.append},
        daemon=True,
    )
    thread.start()

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 30
        while len(texts(got)) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(texts(got)) >= n, (got, statuses)

    try:
        alice.send_text("bob", "before")
        wait_for(1)
        stack.restart("web0")
        alice.send_text("bob", "after")
        wait_for(2)
    finally:
        stop.set()
        thread.join(10)
        listener.close()
    assert texts(got) == ["before", "after"]
    assert statuses.count("connected") >= 2


def test_a_wrong_passphrase_is_refused(make_client) -> None:
    bob = make_client("bob")
    with pytest.raises(WrongPassphrase):
        Courier(bob.home, "not the passphrase").contacts()


def test_user_mistakes_are_client_errors(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    with pytest.raises(ClientError, match="not a valid contact link"):
        alice.add_contact("https://example.org/c#AAAA", "bob")
    with pytest.raises(ClientError, match="no contact named"):
        alice.send_text("nobody", "hi")
    with pytest.raises(ClientError, match="your own contact link"):
        alice.add_contact(alice.contact_link(), "me")
    with pytest.raises(ClientError, match="contact name"):
        alice.add_contact(bob.contact_link(), "../bob")
    alice.add_contact(bob.contact_link(), "bob")
    with pytest.raises(ClientError, match="belongs to your contact"):
        alice.add_contact(bob.contact_link(), "bob2")


def test_a_message_that_cannot_go_out_now_waits_in_the_outbox(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    offline = Courier(alice.home, "passphrase of alice", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Queued, match="will be sent"):
        offline.send_text("bob", "written offline")
    offline.close()
    assert alice.messages("bob")[-1]["status"] == "queued"
    alice.send_text("bob", "written online")
    assert texts(bob.receive()) == ["written offline", "written online"]
    assert [m["status"] for m in alice.messages("bob")] == ["sent", "sent"]


@pytest.mark.parametrize("smaller_key_reads_first", [True, False])
def test_two_people_who_add_each_other_at_once_end_up_in_one_conversation(
    make_client, smaller_key_reads_first: bool
) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    alice.add_contact(bob.contact_link(), "bob")
    bob.add_contact(alice.contact_link(), "alice")
    smaller, larger = sorted(
        (alice, bob), key=lambda c: c._identity(c._state()).public.identity_key
    )
    first, second = (smaller, larger) if smaller_key_reads_first else (larger, smaller)
    for _ in range(2):
        first.receive()
        second.receive()
    assert len(alice.contacts()) == 1 and len(bob.contacts()) == 1
    alice.send_text("bob", "one conversation?")
    bob.send_text("alice", "one conversation.")
    assert texts(bob.receive()) == ["one conversation?"]
    assert texts(alice.receive()) == ["one conversation."]
    a, b = alice._state()["contacts"]["bob"], bob._state()["contacts"]["alice"]
    assert a["their_intro"] is None and b["their_intro"] is None
    assert a["their_mailbox"] == b["mailbox"]["send_id"]
    assert b["their_mailbox"] == a["mailbox"]["send_id"]


def test_an_interrupted_add_can_be_retried(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    with alice.store.transaction() as state:
        state["contacts"]["bob"] = {"session_api": None, "pending": True}  # a crash mid-add
    assert alice.contacts() == []
    alice.add_contact(bob.contact_link(), "bob")
    assert [c["name"] for c in alice.contacts()] == ["bob"]


def test_a_file_that_can_no_longer_be_fetched_is_reported_not_fatal(
    make_client, tmp_path: Path
) -> None:
    from courier.crypto.messages import decode_message

    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    source = tmp_path / "gone.txt"
    source.write_bytes(b"soon gone")
    alice.send_file("bob", source)
    (record,) = [m for m in alice.messages("bob") if m["type"] == "file"]
    descriptor = decode_message(unb64u(record["descriptor"]))
    for _ in range(2):  # someone else uses up the downloads the sender allowed
        alice.api.get_chunk(descriptor.blob_id, descriptor.download_capability, 0)
    events = bob.receive()
    assert [e.kind for e in events] == ["file", "download_failed"]
    assert [m["name"] for m in bob.messages("alice")] == ["gone.txt"]
    alice.send_text("bob", "still talking")
    assert texts(bob.receive()) == ["still talking"]


def test_a_received_file_disappears_with_its_message(make_client, tmp_path: Path) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    alice.set_timer("bob", 4)
    source = tmp_path / "photo.jpg"
    source.write_bytes(os.urandom(1000))
    alice.send_file("bob", source)
    (saved,) = [Path(e.text) for e in bob.receive() if e.kind == "download"]
    assert saved.exists()
    time.sleep(4.2)
    assert bob.messages("alice") == []
    assert not saved.exists()
    assert source.exists()  # the sender's own file is not touched


def test_an_expired_session_is_replaced_by_a_new_one(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    stale = alice._state()["contacts"]["bob"]["session_api"]["token"]
    with alice.store.transaction() as state:
        # As if the server had purged the session: the token is unknown to it.
        state["contacts"]["bob"]["session_api"]["token"] = b64u(os.urandom(32))
    alice.send_text("bob", "with a fresh session")
    assert texts(bob.receive()) == ["with a fresh session"]
    fresh = alice._state()["contacts"]["bob"]["session_api"]["token"]
    assert fresh != stale


def test_listen_replaces_a_home_session_the_relay_refuses(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    with bob.store.transaction() as state:
        state["home_session"]["token"] = b64u(os.urandom(32))
    got: list[Event] = []
    statuses: list[str] = []
    stop = threading.Event()
    listener = Courier(bob.home, "passphrase of bob")
    # maintain() would replace the token over HTTP first; make the socket be the one to notice.
    listener.maintain = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(
        target=listener.listen,
        args=(got.append,),
        kwargs={"stop": stop.is_set, "on_status": statuses.append},
        daemon=True,
    )
    thread.start()
    try:
        alice.send_text("bob", "through a new session")
        deadline = time.monotonic() + 30
        while not texts(got) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
        listener.close()
    assert texts(got) == ["through a new session"], statuses
    assert any("unauthorized" in s for s in statuses)


def test_mailboxes_are_extended_before_they_expire(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)
    soon = int(time.time()) + 60
    with bob.store.transaction() as state:
        state["intro"]["expires_at"] = soon
        state["contacts"]["alice"]["mailbox"]["expires_at"] = soon
    bob.maintain()
    state = bob._state()
    longest = state["policy"]["mailboxes"]["max_ttl_seconds"]
    for box in (state["intro"], state["contacts"]["alice"]["mailbox"]):
        assert box["expires_at"] > time.time() + longest - 3600


def test_delivery_receipts_mark_sent_messages_delivered(make_client) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    alice.add_contact(bob.contact_link(), "bob")
    alice.send_text("bob", "before you answered")
    bob.receive()  # accepts, answers reply_here, then the receipt
    alice.send_text("bob", "after")
    assert [m["status"] for m in alice.messages("bob")] == ["sent", "sent"]
    assert alice.receive() == []
    assert [m["status"] for m in alice.messages("bob")] == ["delivered", "sent"]
    bob.receive()
    alice.receive()
    assert [m["status"] for m in alice.messages("bob")] == ["delivered", "delivered"]


def test_two_processes_of_one_user_send_at_once_without_losing_or_doubling(
    make_client,
) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    connect(alice, bob)

    def sender(tag: str) -> None:
        client = Courier(alice.home, "passphrase of alice")
        try:
            for i in range(5):
                client.send_text("bob", f"{tag}{i}")
        finally:
            client.close()

    threads = [threading.Thread(target=sender, args=(tag,)) for tag in "xy"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    events = bob.receive()
    assert [e.kind for e in events if e.kind != "message"] == []  # nothing dropped as a replay
    assert sorted(texts(events)) == [f"{t}{i}" for t in "xy" for i in range(5)]


def test_the_server_cannot_join_bundle_claims_mailboxes_and_sends_by_token(
    make_client,
) -> None:
    alice, bob = make_client("alice"), make_client("bob")
    used: list[tuple[str, str]] = []
    for client in (alice, bob):
        for method in ("claim_bundle", "create_mailbox", "send_envelope", "count_prekeys"):
            real = getattr(client.api, method)

            def spy(token: str, *args, _real=real, _method=method, **kwargs):
                used.append((_method, token))
                return _real(token, *args, **kwargs)

            setattr(client.api, method, spy)
    connect(alice, bob)
    alice.send_text("bob", "hi")
    bob.receive()
    bob.send_text("alice", "hello")
    bob.maintain_prekeys()
    tokens = {}
    for method, token in used:
        tokens.setdefault(method, set()).add(token)
    home_a = alice._state()["home_session"]["token"]
    home_b = bob._state()["home_session"]["token"]
    (claim,) = tokens["claim_bundle"]
    assert tokens["create_mailbox"] == {home_a, home_b}  # each side's relay session
    sends = tokens["send_envelope"]
    assert sends == {
        alice._state()["contacts"]["bob"]["session_api"]["token"],
        bob._state()["contacts"]["alice"]["session_api"]["token"],
    }
    assert tokens["count_prekeys"] == {bob._state()["directory_session"]["token"]}
    everything = [home_a, home_b, *sends, *tokens["count_prekeys"]]
    assert claim not in everything and len(set(everything)) == len(everything)
    # The claim's session was ended right away.
    from courier.api import Unauthorized

    with pytest.raises(Unauthorized):
        alice.api.create_mailbox(claim, os.urandom(32), 60)
