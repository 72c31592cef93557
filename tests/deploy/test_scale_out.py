"""The production topology on this machine: migrate, two ASGI nodes, one worker, one beat,
every one started through docker/entrypoint.sh with its role, on this machine's PostgreSQL
(a database of its own) and Redis. Clients talk to both nodes as they would through Caddy.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from courier.crypto.identity import Identity, bundle_to_json, generate_bundle
from messenger.beat import alive_beats, current_leader
from messenger.codec import b64u_decode, b64u_encode
from tests.deploy.support import DOCKER, ENTRYPOINT, compose_environment, wait_for
from tests.deploy.topology import (
    MINTED_TOKENS,
    Deployment,
    Node,
    deployment_id_for,
    own_database,
    topology_environment,
)
from tests.support.relay_protocol import Owner, ack_frame, make_envelope, parse_push

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]

TASK_DONE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*Task (\S+)\[[0-9a-f-]+\] succeeded in "
    r"[0-9.e-]+s: (.*)$",
    re.MULTILINE,
)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # Overrides tests/conftest.py: flushing Redis under running servers would delete the
    # worker's queue bindings and beat's lock. The next module's tests flush it again.
    yield


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    server = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    assert server.startswith("postgres"), "the scale-out test needs PostgreSQL (pass 2)"
    assert redis_url, "the scale-out test needs Redis (pass 2)"
    redis.Redis.from_url(redis_url).flushdb()  # what the suite's cache fixture would do
    tmp = tmp_path_factory.mktemp("topology")
    (tmp / "logs").mkdir()
    with own_database(server) as database_url:
        env = topology_environment(tmp, database_url, redis_url)
        deployment = Deployment(env, tmp / "logs", database_url)
        try:
            migrated = deployment.entrypoint("migrate")
            assert migrated.returncode == 0, migrated.stdout + migrated.stderr
            deployment.start_web("web-a")
            deployment.start_web("web-b")
            deployment.start("worker", "worker", "--concurrency", "2")
            deployment.start("beat", "beat")
            beats = lambda: alive_beats(deployment=deployment_id_for(database_url))  # noqa: E731
            wait_for(lambda: len(beats()) == 1, 60, "beat's heartbeat")
            wait_for(lambda: " ready." in deployment.log("worker"), 60, "the worker")
            yield deployment
        finally:
            deployment.stop_all()


def count_rows(deployment: Deployment, table: str, where: str = "true") -> int:
    with psycopg.connect(deployment.database_url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_mailbox(node: Node, token: str, ttl: int = 3600) -> tuple[Owner, bytes, bytes]:
    owner = Owner.generate()
    answer = node.http.post(
        "/api/v1/mailboxes",
        json={"owner_key": b64u_encode(owner.public), "ttl_seconds": ttl},
        headers=bearer(token),
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return owner, b64u_decode(body["send_id"]), b64u_decode(body["receive_id"])


def send(node: Node, token: str, send_id: bytes, envelope: bytes, ttl: int | None = None) -> str:
    query = f"?ttl={ttl}" if ttl else ""
    answer = node.http.post(
        f"/api/v1/mailboxes/{b64u_encode(send_id)}/envelopes{query}",
        content=envelope,
        headers={**bearer(token), "Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def receive_pushes(socket, count: int, timeout: float = 15) -> dict[str, bytes]:
    """Read pushed envelopes until `count` distinct ids arrived; ack each one."""
    received: dict[str, bytes] = {}
    deadline = time.monotonic() + timeout
    while len(received) < count:
        frame = socket.recv(timeout=max(0.1, deadline - time.monotonic()))
        if isinstance(frame, str):
            continue  # subscribed and other control frames
        push = parse_push(frame)
        received[b64u_encode(push.id)] = push.envelope
        socket.ws.send(ack_frame([push.id]))
    return received


# --- the deployment as an operator sees it --------------------------------------------


def test_check_deploy_is_clean_with_the_compose_environment(
    deployment: Deployment, tmp_path: Path
) -> None:
    # Exactly what a compose service sees (no test adjustments), with this deployment's
    # database and Redis, while its beat runs.
    env = compose_environment(
        tmp_path,
        service="web",
        database_url=deployment.database_url,
        redis_url=deployment.env["REDIS_URL"],
    )
    assert env["PRODUCTION"] == "true" and env["ALLOWED_HOSTS"] == "chat.example.org"
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "manage", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_every_role_passes_its_container_healthcheck(deployment: Deployment) -> None:
    checks = [
        ["web", str(deployment.ports["web-a"])],
        ["web", str(deployment.ports["web-b"])],
        ["worker"],
        ["beat"],
    ]
    for args in checks:
        result = subprocess.run(
            [sys.executable, str(DOCKER / "healthcheck.py"), *args],
            env=deployment.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (args, result.stderr)


def test_nodes_redirect_plain_http_and_trust_the_proxy_scheme(deployment: Deployment) -> None:
    port = deployment.ports["web-a"]
    plain = httpx.get(f"http://127.0.0.1:{port}/api/v1/policy", headers={"Host": "127.0.0.1"})
    assert plain.status_code == 301
    assert plain.headers["Location"].startswith("https://")
    behind_proxy = deployment.node("web-a").http.get("/api/v1/policy")
    assert behind_proxy.status_code == 200
    assert behind_proxy.headers["Strict-Transport-Security"].startswith("max-age=63072000")


# --- clients on both nodes ---------------------------------------------------------------


def test_envelopes_sent_through_one_node_reach_a_socket_on_the_other(
    deployment: Deployment,
) -> None:
    a, b = deployment.node("web-a"), deployment.node("web-b")
    token = a.session()  # one session works on every node: they share the database
    for sender, receiver in ((a, b), (b, a)):
        owner, send_id, receive_id = new_mailbox(receiver, token)
        socket = receiver.socket(token)
        try:
            socket.subscribe(owner, receive_id)
            assert socket.json()["type"] == "subscribed"
            envelopes = [make_envelope(1024, marker=bytes([i])) for i in range(3)]
            ids = [send(sender, token, send_id, envelope) for envelope in envelopes]
            received = receive_pushes(socket, len(ids))
        finally:
            socket.close()
        assert received == dict(zip(ids, envelopes, strict=True))


def test_a_blob_uploaded_through_one_node_downloads_through_the_other(
    deployment: Deployment,
) -> None:
    a, b = deployment.node("web-a"), deployment.node("web-b")
    token = b.session()
    created = a.http.post(
        "/api/v1/blobs",
        json={"chunk_size": 65536, "chunk_count": 2, "ttl": 600, "max_downloads": 1},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    blob = created.json()
    chunks = [os.urandom(65536), os.urandom(65536)]
    upload = {"Authorization": f"Capability {blob['upload_capability']}"}
    download = {"Authorization": f"Capability {blob['download_capability']}"}
    for index, (node, chunk) in enumerate(((a, chunks[0]), (b, chunks[1]))):
        stored = node.http.put(
            f"/api/v1/blobs/{blob['blob_id']}/chunks/{index}",
            content=chunk,
            headers={**upload, "Content-Type": "application/octet-stream"},
        )
        assert stored.status_code == 201, stored.text
    assert stored.json()["complete"] is True
    got = [
        node.http.get(f"/api/v1/blobs/{blob['blob_id']}/chunks/{i}", headers=download)
        for i, node in ((0, b), (1, a))
    ]
    assert [answer.status_code for answer in got] == [200, 200]
    assert [answer.content for answer in got] == chunks
    # The download limit is shared too: the one allowed download is spent on either node.
    again = a.http.get(f"/api/v1/blobs/{blob['blob_id']}/chunks/0", headers=download)
    assert again.status_code == 410


def test_one_time_prekeys_are_claimed_exactly_once_across_nodes(deployment: Deployment) -> None:
    a, b = deployment.node("web-a"), deployment.node("web-b")
    identity = Identity.generate()
    handle = b64u_encode(secrets.token_bytes(16))
    stock = tuple(range(1, 11))
    bundle, _ = generate_bundle(
        identity, pq_last_resort_id=100, one_time_ids=stock, pq_one_time_ids=stock
    )
    body = httpx.Request("PUT", "/", json=bundle_to_json(bundle)).content
    path = f"/api/v1/keys/{handle}"
    token = a.session()
    published = a.http.put(
        path,
        content=body,
        headers={
            **bearer(token),
            **a.signed_headers(identity.sign, "PUT", path, body),
            "Content-Type": "application/json",
        },
    )
    assert published.status_code == 201, published.text

    # Twelve claims at once, alternating nodes, two per session: ten keys of each kind
    # to hand out, so exactly two claims get none, and no key goes out twice.
    tokens = [b.session() for _ in range(6)]
    start = threading.Barrier(12)

    def claim(i: int) -> tuple[int | None, int | None]:
        node = (a, b)[i % 2]
        start.wait()
        answer = node.http.get(path, headers=bearer(tokens[i // 2]))
        assert answer.status_code == 200, answer.text
        claimed = answer.json()
        one_time, pq = claimed["one_time_prekey"], claimed["pq_one_time_prekey"]
        return (one_time and one_time["id"], pq and pq["id"])

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(claim, range(12)))
    for kind in (0, 1):
        handed_out = [result[kind] for result in results if result[kind] is not None]
        assert sorted(handed_out) == list(stock)
        assert sum(result[kind] is None for result in results) == 2


def test_beat_purges_expired_data_once_while_both_nodes_run(deployment: Deployment) -> None:
    a, b = deployment.node("web-a"), deployment.node("web-b")
    token = a.session()
    _, send_id, _ = new_mailbox(a, token)
    new_mailbox(b, token, ttl=1)  # a mailbox that expires at once
    for node in (a, b, a):
        send(node, token, send_id, make_envelope(1024), ttl=1)
    assert count_rows(deployment, "relay_envelope") == 3
    wait_for(lambda: count_rows(deployment, "relay_envelope") == 0, 30, "the purge")
    expired_mailboxes = lambda: count_rows(deployment, "relay_mailbox", "expires_at <= now()")  # noqa: E731
    wait_for(lambda: expired_mailboxes() == 0, 30, "the mailbox purge")

    def runs() -> list[tuple[str, str]]:
        return [(name, result) for _, name, result in TASK_DONE.findall(deployment.log("worker"))]

    def purged() -> tuple[int, int]:
        results = [result for name, result in runs() if name == "relay.purge_expired"]
        envelopes = sum(int(re.search(r"'envelopes': (\d+)", r).group(1)) for r in results)
        mailboxes = sum(int(re.search(r"'mailboxes': (\d+)", r).group(1)) for r in results)
        return envelopes, mailboxes

    # Purged once: the three envelopes and the one mailbox are counted by exactly one run
    # each (the worker logs a run just after its commit, so wait for the log line).
    wait_for(lambda: purged() == (3, 1), 10, "the purge to be logged")
    time.sleep(2.5)  # another run of the job: it finds nothing more
    assert purged() == (3, 1)
    relay_runs = [result for name, result in runs() if name == "relay.purge_expired"]
    # One schedule, not two: only the beat process sends jobs (no node or worker runs a
    # scheduler of its own), and every run of the job was sent by it.
    for name in deployment.processes:
        if name != "beat":
            assert "Sending due task" not in deployment.log(name), name
    sends = len(
        re.findall(r"Sending due task \S+ \(relay\.purge_expired\)", deployment.log("beat"))
    )
    # (A job sent may not have run yet, never the other way round.)
    assert sends - 3 <= len(relay_runs) <= sends, (sends, relay_runs)
    assert len(relay_runs) >= 3
    # Every job of the schedule ran, each on the same cadence.
    scheduled = {name for name, _ in runs()}
    assert {"relay.purge_expired", "messenger.rotate_epoch_keys", "files.purge_blobs"} <= scheduled
    assert len(alive_beats(deployment=deployment_id_for(deployment.database_url))) == 1


def test_a_second_beat_waits_on_the_first_ones_lock(deployment: Deployment) -> None:
    deployment_id = deployment_id_for(deployment.database_url)
    leader = current_leader(deployment=deployment_id)
    assert leader is not None
    deployment.start("beat-2", "beat")
    try:
        wait_for(lambda: len(alive_beats(deployment=deployment_id)) == 2, 60, "beat-2")
        wait_for(
            lambda: "another beat runs this deployment's schedule" in deployment.log("beat-2"),
            30,
            "beat-2 to find the lock taken",
        )
        assert current_leader(deployment=deployment_id) == leader
        checked = deployment.entrypoint("manage", "check", "--deploy", "--fail-level", "WARNING")
        assert checked.returncode != 0
        assert "messenger.W002" in checked.stderr + checked.stdout
    finally:
        deployment.stop("beat-2")
    wait_for(lambda: len(alive_beats(deployment=deployment_id)) == 1, 30, "beat-2 to leave")
    assert current_leader(deployment=deployment_id) == leader


def test_killing_a_node_loses_no_envelope_a_client_was_told_was_accepted(
    deployment: Deployment,
) -> None:
    a, b = deployment.node("web-a"), deployment.node("web-b")
    token = b.session()
    owner, send_id, receive_id = new_mailbox(b, token)
    # The owner listens on node A, which is about to die.
    socket = a.socket(token)
    socket.subscribe(owner, receive_id)
    assert socket.json()["type"] == "subscribed"

    accepted: list[str] = []
    killed = threading.Event()

    def sender() -> None:
        # Like Caddy would: try a node, and on a connection failure the next one.
        for i in range(40):
            for node in (a, b) if i % 2 == 0 else (b, a):
                try:
                    accepted.append(send(node, token, send_id, make_envelope(1024)))
                    break
                except httpx.TransportError:
                    continue  # not accepted: the client was told nothing
            if i == 15:
                killed.wait(10)

    thread = threading.Thread(target=sender)
    thread.start()
    wait_for(lambda: len(accepted) >= 10, 30, "sends before the kill")
    deployment.kill("web-a")
    killed.set()
    thread.join(60)
    assert not thread.is_alive()
    assert len(accepted) == 40

    # A's container healthcheck now fails; B serves everything.
    dead = subprocess.run(
        [sys.executable, str(DOCKER / "healthcheck.py"), "web", str(deployment.ports["web-a"])],
        env=deployment.env,
        capture_output=True,
    )
    assert dead.returncode == 1
    # The owner reconnects to B: every accepted envelope is still queued and delivered.
    again = b.socket(token)
    try:
        again.subscribe(owner, receive_id)
        assert again.json()["type"] == "subscribed"
        received = receive_pushes(again, len(set(accepted)), timeout=30)
        # A send can be committed and then lose its answer with the killed node: that
        # client was never told "accepted" and retried on the other node, so the queue may
        # hold more envelopes than `accepted` (at-least-once). Read and ack until every
        # accepted one has arrived and nothing more comes.
        while True:
            try:
                received.update(receive_pushes(again, 1, timeout=2))
            except TimeoutError:
                break
    finally:
        again.close()
    assert set(accepted) <= set(received)
    wait_for(lambda: count_rows(deployment, "relay_envelope") == 0, 10, "the acks")


def test_no_process_logged_a_client_address_or_a_token(deployment: Deployment) -> None:
    """Runs last: the logs of the whole module's traffic, including the kill."""
    assert len(MINTED_TOKENS) >= 8
    for name in deployment.processes:
        log = deployment.log(name)
        for token in MINTED_TOKENS:
            assert token not in log, name
        assert "Bearer" not in log and "Capability" not in log, name
    for name in ("web-a", "web-b"):
        # The ASGI nodes log no request at all (daphne -v 0), so no peer address.
        log = deployment.log(name)
        assert "127.0.0.1" not in log and "/api/v1/" not in log, (name, log[-2000:])
