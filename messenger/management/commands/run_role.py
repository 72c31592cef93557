"""Start one role of a production deployment: what docker/entrypoint.sh runs.

The command lines come from messenger/processes.py, the same ones `manage.py serve` and
the end-to-end tests use, so a container runs the server exactly as the tests do. The
long-running roles replace this process (exec), so the container's signals reach daphne
or celery directly and a `docker stop` shuts them down cleanly.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from messenger.processes import beat_command, web_command, worker_command

ROLES = ("web", "worker", "beat", "migrate")


class Command(BaseCommand):
    help = "Run one role of the deployment: web, worker, beat or migrate."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("role", choices=ROLES)
        parser.add_argument("--host", default="0.0.0.0", help="web: address to bind")  # noqa: S104
        parser.add_argument("--port", type=int, default=8000, help="web: port to bind")
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="web: take the scheme (and peer) from X-Forwarded-* set by the TLS proxy",
        )
        parser.add_argument("--concurrency", type=int, default=2, help="worker: processes")

    def handle(self, *args: Any, role: str, **options: Any) -> None:
        if role == "migrate":
            call_command("migrate", interactive=False, verbosity=1)
            return
        if role == "web":
            command = web_command(
                options["host"], options["port"], proxy_headers=options["proxy_headers"]
            )
        elif role == "worker":
            command = worker_command(concurrency=options["concurrency"])
        elif role == "beat":
            command = beat_command()
        else:  # argparse's choices make this unreachable
            raise CommandError(f"unknown role {role!r}")
        connections.close_all()
        self.stdout.flush()
        os.execv(command[0], command)  # noqa: S606
