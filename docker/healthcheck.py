"""Container healthchecks: `python docker/healthcheck.py {web [port]|worker|beat}`.

web:    GET /healthz on the local daphne (standard library only: it runs every 30 s).
worker: this container's Celery node answers a ping over the broker.
beat:   this container's beat wrote its heartbeat to Redis within the last 20 seconds
        (messenger/beat.py).
Exit status 0 is healthy, 1 is not.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def web(port: int) -> bool:
    # /healthz is exempt from the HTTPS redirect and reads no Host header.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as answer:
        return answer.status == 200


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messenger.settings")
    import django

    django.setup()


def worker() -> bool:
    _django()
    from messenger.celery import app

    node = f"celery@{socket.gethostname()}"
    return bool(app.control.ping(destination=[node], timeout=4))


def beat() -> bool:
    _django()
    from messenger.beat import alive_beats

    host = socket.gethostname()
    return any(beat_id.startswith(f"{host}:") for beat_id in alive_beats())


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else "web"
    try:
        if role == "web":
            healthy = web(int(argv[2]) if len(argv) > 2 else 8000)
        elif role == "worker":
            healthy = worker()
        elif role == "beat":
            healthy = beat()
        else:
            print(f"unknown role {role!r}", file=sys.stderr)
            return 2
    except Exception as exc:  # any failure to answer is "unhealthy"
        print(f"{role} unhealthy: {type(exc).__name__}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
