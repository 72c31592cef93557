"""Run the embedded server: migrations, one ASGI process, one worker with beat."""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from messenger.processes import web_command, worker_command


class Command(BaseCommand):
    help = "Run the server on the embedded default: daphne plus a Celery worker with beat."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-worker", action="store_true", help="run the web process only")

    def handle(self, *args: Any, host: str, port: int, no_worker: bool, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        processes = [subprocess.Popen(web_command(host, port))]  # noqa: S603
        if not no_worker:
            processes.append(subprocess.Popen(worker_command(with_beat=True)))  # noqa: S603
        shown = f"[{host}]" if ":" in host else host
        self.stdout.write(f"Courier is running at http://{shown}:{port}/  (Ctrl-C stops it)")

        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(p.poll() is None for p in processes):
                time.sleep(0.5)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        failed = [p.returncode for p in processes if p.returncode not in (0, -15, None)]
        if failed and not stopping:
            raise SystemExit(f"a server process exited with status {failed[0]}")
