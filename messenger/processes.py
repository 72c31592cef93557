"""The command lines of the server's processes, shared by `manage.py serve`, the docker
entrypoint and the end-to-end tests, so all of them run the server the same way.

daphne runs with verbosity 0: at 1 it writes an access log with every client address.
"""

from __future__ import annotations

import sys


def web_command(host: str, port: int, *, proxy_headers: bool = False) -> list[str]:
    command = [sys.executable, "-m", "daphne", "-v", "0", "-b", host, "-p", str(port)]
    if proxy_headers:
        command.append("--proxy-headers")
    # Idle sockets are closed by the relay itself; these are daphne's outer limits. The
    # message cap keeps daphne from buffering up to its 1 MiB default before the relay can
    # refuse a frame: twice the largest envelope bucket is plenty.
    command += ["--websocket_timeout", "86400", "--ping-interval", "20"]
    command += ["--websocket-max-message-size", "131072", "--websocket-max-frame-size", "131072"]
    return [*command, "messenger.asgi:application"]


def worker_command(*, with_beat: bool = False, concurrency: int = 2) -> list[str]:
    command = [sys.executable, "-m", "celery", "-A", "messenger", "worker", "--loglevel=INFO"]
    if with_beat:
        # The embedded default: one worker process that also runs the beat schedule.
        command += ["-B", "--pool=solo"]
    else:
        command += [f"--concurrency={concurrency}"]
    return command


def beat_command() -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "messenger", "beat", "--loglevel=INFO"]
