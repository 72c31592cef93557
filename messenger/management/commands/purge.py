"""Run every periodic job of the beat schedule now, in this process, and print what it did.

The jobs are the ones CELERY_BEAT_SCHEDULE names (purges of expired sessions, envelopes,
mailboxes, prekeys and blobs, and the destruction of ended epoch keys), so this command
and beat can never disagree about what "purge" means. Every job is idempotent: running
it while beat runs too is safe.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from messenger.celery import app


def scheduled_task_names() -> list[str]:
    names: list[str] = []
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        name = str(entry["task"])
        if name not in names:
            names.append(name)
    return names


class Command(BaseCommand):
    help = "Purge expired data and destroy ended epoch keys now (every beat job, once)."

    def handle(self, *args: Any, **options: Any) -> None:
        app.loader.import_default_modules()  # registers every app's tasks
        for name in scheduled_task_names():
            task = app.tasks.get(name)
            if task is None:
                raise CommandError(f"the beat schedule names {name!r}, which no app defines")
            result = task()  # synchronously, in this process
            self.stdout.write(f"{name}: {json.dumps(result)}")
