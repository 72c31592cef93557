"""The relay socket through the real ASGI application (routing and origin check included)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from relay import services
from relay.models import Envelope
from tests.relay.conftest import ORIGIN, OwnedMailbox, Socket, new_mailbox
from tests.support.relay_protocol import ack_frame, b64u, make_envelope, send_frame

pytestmark = pytest.mark.django_db(transaction=True)

enqueue = sync_to_async(services.enqueue_envelope)


async def count_envelopes() -> int:
    return await Envelope.objects.acount()


async def test_it_pushes_queued_envelopes_on_subscribe_and_deletes_them_on_ack(
    session_token: str, mailbox: OwnedMailbox
) -> None:
    first = make_envelope(1024)
    second = make_envelope(4096)
    a = await enqueue(mailbox.send_id, first, 600)
    b = await enqueue(mailbox.send_id, second, 600)
    socket = Socket()
    await socket.auth(session_token)
    await socket.subscribe(mailbox)
    assert (await socket.json()) == {"type": "subscribed", "receive_id": b64u(mailbox.receive_id)}
    pushes = [await socket.push(), await socket.push()]
    assert {p.id: p.envelope for p in pushes} == {a.id: first, b.id: second}
    assert all(p.receive_id == mailbox.receive_id for p in pushes)
    await socket.communicator.send_to(text_data=ack_frame([a.id, b.id]))
    await socket.send_json({"type": "ping"})
    assert (await socket.json())["type"] == "pong"
    assert await count_envelopes() == 0
    await socket.close()

    # A new socket gets nothing: acknowledged envelopes are gone.
    again = Socket()
    await again.auth(session_token)
    await again.subscribe(mailbox)
    assert (await again.json())["type"] == "subscribed"
    assert await again.nothing()
    await again.close()


async def test_it_pushes_a_new_envelope_live_on_the_doorbell(
    session_token: str, mailbox: OwnedMailbox
) -> None:
    socket = Socket()
    await socket.auth(session_token)
    await socket.subscribe(mailbox)
    assert (await socket.json())["type"] == "subscribed"
    envelope = make_envelope(16384)
    accepted = await enqueue(mailbox.send_id, envelope, 600)
    push = await socket.push()
    assert (push.id, push.envelope) == (accepted.id, envelope)
    await socket.close()


async def test_unacknowledged_envelopes_are_pushed_again_after_a_reconnect(
    session_token: str, mailbox: OwnedMailbox
) -> None:
    accepted = await enqueue(mailbox.send_id, make_envelope(), 600)
    socket = Socket()
    await socket.auth(session_token)
    await socket.subscribe(mailbox)
    await socket.json()
    assert (await socket.push()).id == accepted.id
    await socket.close()
    again = Socket()
    await again.auth(session_token)
    await again.subscribe(mailbox)
    await again.json()
    assert (await again.push()).id == accepted.id
    await again.close()


async def test_expired_envelopes_are_never_delivered(
    session_token: str, mailbox: OwnedMailbox
) -> None:
    accepted = await enqueue(mailbox.send_id, make_envelope(), 600)
    past = timezone.now() - timedelta(seconds=1)
    await Envelope.objects.filter(id=accepted.id).aupdate(expires_at=past)
    socket = Socket()
    await socket.auth(session_token)
    await socket.subscribe(mailbox)
    assert (await socket.json())["type"] == "subscribed"
    assert await socket.nothing()
    # Nor on a doorbell that names it.
    await services.aring_doorbell(bytes(mailbox.mailbox.pk), accepted.id)
    assert await socket.nothing()
    await socket.close()


async def test_it_refuses_a_subscription_with_a_bad_signature(
    session_token: str, mailbox: OwnedMailbox
) -> None:
    socket = Socket()
    await socket.auth(session_token)
    await socket.send_json(
        {
            "type": "subscribe",
            "receive_id": b64u(mailbox.receive_id),
            "challenge": b64u(socket.challenge),
            "signature": b64u(b"\x00" * 64),
        }
    )
    assert await socket.closed_with() == ("bad_signature", 4403)


async def test_it_refuses_a_subscription_signed_by_another_mailboxs_key(
    session_token: str, mailbox: OwnedMailbox, other_mailbox: OwnedMailbox
) -> None:
    await enqueue(mailbox.send_id, make_envelope(), 600)
    socket = Socket()
    await socket.auth(session_token)
    await socket.subscribe(mailbox, owner=other_mailbox.owner)
    assert await socket.closed_with() == ("bad_signature", 4403)


async def test_it_refuses_a_subscription_over_a_stale_challenge(
    session_token: str, mailbox: OwnedMailbox
) -> None:
    old = Socket()
    await old.auth(session_token)
    socket = Socket()
    await socket.auth(session_token)
    # A signature over another socket's challenge cannot be replayed here.
    socket.challenge = old.challenge
    await socket.subscribe(mailbox)
    assert await socket.closed_with() == ("stale_challenge", 4409)
    await old.close()


async def test_a_replaced_challenge_is_stale(session_token: str, mailbox: OwnedMailbox) -> None:
    socket = Socket()
    await socket.auth(session_token)
    first = socket.challenge
    await socket.send_json({"type": "challenge"})
    fresh = await socket.json()
    assert fresh["type"] == "challenge" and fresh["challenge"] != b64u(first)
    await socket.subscribe(mailbox)  # still signs the first challenge
    assert await socket.closed_with() == ("stale_challenge", 4409)


async def test_an_expired_challenge_is_stale(
    session_token: str, mailbox: OwnedMailbox, settings
) -> None:
    settings.CHALLENGE_TTL_SECONDS = 0
    socket = Socket()
    await socket.auth(session_token)
    await socket.subscribe(mailbox)
    assert await socket.closed_with() == ("stale_challenge", 4409)


async def test_subscribing_to_an_unknown_mailbox_is_refused_without_closing(
    session_token: str, mailbox: OwnedMailbox
) -> None:
    socket = Socket()
    await socket.auth(session_token)
    await sync_to_async(services.delete_mailbox)(mailbox.mailbox)
    await socket.subscribe(mailbox)
    refused = await socket.json()
    assert refused["type"] == "subscribe_refused" and refused["code"] == "mailbox_not_found"
    await socket.send_json({"type": "ping"})
    assert (await socket.json())["type"] == "pong"
    await socket.close()


async def test_the_first_frame_must_authenticate(mailbox: OwnedMailbox) -> None:
    socket = Socket()
    assert await socket.connect()
    await socket.send_json({"type": "ping"})
    assert await socket.closed_with() == ("unauthorized", 4401)


async def test_a_bad_token_is_refused(db: None) -> None:
    socket = Socket()
    assert await socket.connect()
    await socket.send_json({"type": "auth", "token": "A" * 43})
    assert await socket.closed_with() == ("unauthorized", 4401)


async def test_a_socket_that_never_authenticates_is_closed(db: None, settings) -> None:
    settings.RELAY_WS_AUTH_TIMEOUT_SECONDS = 0
    socket = Socket()
    assert await socket.connect()
    assert await socket.closed_with() == ("auth_timeout", 4408)


async def test_an_idle_socket_is_closed(session_token: str, settings) -> None:
    settings.RELAY_WS_IDLE_TIMEOUT_SECONDS = 1
    socket = Socket()
    await socket.auth(session_token)
    assert await socket.closed_with(wait=3) == ("idle_timeout", 4410)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"origin", b"http://evil.example")],
        [(b"origin", b"http://127.0.0.1.evil.example")],
        [],
    ],
    ids=["other-site", "lookalike", "no-origin"],
)
async def test_cross_origin_handshakes_are_refused(
    db: None, headers: list[tuple[bytes, bytes]]
) -> None:
    socket = Socket(headers=headers)
    assert not await socket.connect()


async def test_a_same_origin_handshake_is_accepted(db: None) -> None:
    socket = Socket(headers=[ORIGIN])
    assert await socket.connect()
    await socket.close()


async def test_it_accepts_an_envelope_sent_over_the_socket(
    session_token: str, mailbox: OwnedMailbox
) -> None:
    receiver = Socket()
    await receiver.auth(session_token)
    await receiver.subscribe(mailbox)
    await receiver.json()
    sender = Socket()
    await sender.auth(session_token)
    envelope = make_envelope(4096)
    await sender.communicator.send_to(bytes_data=send_frame(7, mailbox.send_id, envelope, 60))
    accepted = await sender.json()
    assert accepted["type"] == "accepted" and accepted["ref"] == 7
    push = await receiver.push()
    assert b64u(push.id) == accepted["id"] and push.envelope == envelope
    assert await count_envelopes() == 1
    await sender.close()
    await receiver.close()


@pytest.mark.parametrize("size", [1, 1023, 1025, 2048, 65535])
async def test_it_refuses_a_wrong_size_envelope_on_the_socket(
    session_token: str, mailbox: OwnedMailbox, size: int
) -> None:
    socket = Socket()
    await socket.auth(session_token)
    frame = send_frame(1, mailbox.send_id, make_envelope(size))
    await socket.communicator.send_to(bytes_data=frame)
    assert await socket.closed_with() == ("invalid_envelope", 4415)
    assert await count_envelopes() == 0


async def test_it_refuses_an_envelope_with_another_version_byte(
    session_token: str, mailbox: OwnedMailbox
) -> None:
    socket = Socket()
    await socket.auth(session_token)
    await socket.communicator.send_to(bytes_data=send_frame(1, mailbox.send_id, b"\x02" * 1024))
    assert await socket.closed_with() == ("invalid_envelope", 4415)


async def test_a_send_to_an_unknown_mailbox_is_rejected_without_closing(
    session_token: str,
) -> None:
    socket = Socket()
    await socket.auth(session_token)
    await socket.communicator.send_to(bytes_data=send_frame(3, b"\x00" * 16, make_envelope()))
    rejected = await socket.json()
    assert rejected == {
        "type": "rejected",
        "ref": 3,
        "code": "mailbox_not_found",
        "message": rejected["message"],
    }
    await socket.close()


@pytest.mark.parametrize("text", [True, False], ids=["text", "binary"])
async def test_an_oversized_frame_closes_the_socket(
    session_token: str, mailbox: OwnedMailbox, text: bool
) -> None:
    socket = Socket()
    await socket.auth(session_token)
    if text:
        await socket.communicator.send_to(text_data="x" * (16 * 1024 + 1))
    else:
        frame = send_frame(1, mailbox.send_id, make_envelope(65536)) + b"\x00"
        await socket.communicator.send_to(bytes_data=frame)
    assert await socket.closed_with() == ("frame_too_large", 4413)


async def test_an_oversized_frame_is_refused_even_before_auth(db: None) -> None:
    socket = Socket()
    assert await socket.connect()
    await socket.communicator.send_to(bytes_data=b"\x02" * 70000)
    assert await socket.closed_with() == ("frame_too_large", 4413)


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"type": "dance"}',
        '{"type": "ack", "ids": []}',
        '{"type": "ack", "ids": ["short"]}',
        '{"type": "subscribe", "receive_id": "x"}',
    ],
)
async def test_a_malformed_frame_closes_the_socket(session_token: str, frame: str) -> None:
    socket = Socket()
    await socket.auth(session_token)
    await socket.communicator.send_to(text_data=frame)
    assert await socket.closed_with() == ("bad_frame", 4400)


async def test_too_many_frames_close_the_socket(session_token: str, settings) -> None:
    settings.RELAY_WS_RATE_PER_SECOND = 1
    settings.RELAY_WS_RATE_BURST = 5
    socket = Socket()
    await socket.auth(session_token)  # the auth frame takes one token
    for _ in range(10):
        await socket.send_json({"type": "ping"})
        reply = await socket.json()
        if reply["type"] != "pong":
            break
    assert reply["code"] == "rate_limited"
    close = await socket.output()
    assert close == {"type": "websocket.close", "code": 4429, "reason": "rate_limited"}


async def test_a_socket_may_hold_only_so_many_subscriptions(
    session_token: str, settings, mailbox: OwnedMailbox, other_mailbox: OwnedMailbox
) -> None:
    settings.RELAY_WS_MAX_SUBSCRIPTIONS = 1
    socket = Socket()
    await socket.auth(session_token)
    await socket.subscribe(mailbox)
    assert (await socket.json())["type"] == "subscribed"
    await socket.subscribe(mailbox)  # the same one again is fine
    assert (await socket.json())["type"] == "subscribed"
    await socket.subscribe(other_mailbox)
    assert await socket.closed_with() == ("too_many_subscriptions", 4431)


async def test_it_pushes_at_most_the_inflight_window_until_acks_arrive(
    session_token: str, settings, mailbox: OwnedMailbox
) -> None:
    settings.RELAY_WS_MAX_INFLIGHT = 2
    ids = {(await enqueue(mailbox.send_id, make_envelope(), 600)).id for _ in range(5)}
    socket = Socket()
    await socket.auth(session_token)
    await socket.subscribe(mailbox)
    await socket.json()
    seen = [(await socket.push()).id, (await socket.push()).id]
    assert await socket.nothing()
    # A doorbell while the window is full waits for room too.
    ids.add((await enqueue(mailbox.send_id, make_envelope(), 600)).id)
    assert await socket.nothing()
    while len(seen) < len(ids):
        await socket.communicator.send_to(text_data=ack_frame(seen[-2:]))
        seen += [(await socket.push()).id, (await socket.push()).id]
    assert set(seen) == ids and len(seen) == len(ids)
    await socket.close()


async def test_one_socket_receives_from_several_mailboxes(session_token: str) -> None:
    boxes = [await sync_to_async(new_mailbox)() for _ in range(3)]
    socket = Socket()
    await socket.auth(session_token)
    for box in boxes:
        await socket.subscribe(box)
        assert (await socket.json())["type"] == "subscribed"
    sent = {}
    for box in boxes:
        accepted = await enqueue(box.send_id, make_envelope(), 600)
        sent[accepted.id] = box.receive_id
    pushes = [await socket.push() for _ in boxes]
    assert {p.id: p.receive_id for p in pushes} == sent
    await socket.close()


async def test_an_unsubscribed_mailbox_gets_no_more_pushes(
    session_token: str, mailbox: OwnedMailbox
) -> None:
    socket = Socket()
    await socket.auth(session_token)
    await socket.subscribe(mailbox)
    await socket.json()
    await socket.send_json({"type": "unsubscribe", "receive_id": b64u(mailbox.receive_id)})
    assert (await socket.json())["type"] == "unsubscribed"
    await enqueue(mailbox.send_id, make_envelope(), 600)
    assert await socket.nothing()
    await socket.close()


async def test_a_lost_doorbell_is_healed_by_the_resync(
    session_token: str, mailbox: OwnedMailbox, settings
) -> None:
    settings.RELAY_WS_RESYNC_SECONDS = 1
    socket = Socket()
    await socket.auth(session_token)
    await socket.subscribe(mailbox)
    await socket.json()
    # Committed without a doorbell, as when Redis is down at the wrong moment.
    accepted = await sync_to_async(services.enqueue_envelope)(
        mailbox.send_id, make_envelope(), 600, ring=False
    )
    assert (await socket.push(wait=3)).id == accepted.id
    await socket.close()
