"""Replace the at-rest master key: re-wrap every epoch key under a new one.

Stop every web node, the worker and beat first: a process still running with the old
master key would wrap new epoch keys under it. Afterwards give every process the new key
and destroy every copy of the old one; backups, snapshots and WAL archives made under the
old key then no longer open (docs/operations.md, "The master key").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings

from messenger import atrest
from messenger.checks import PLACEHOLDER_SECRETS
from messenger.models import EpochKey


class Command(BaseCommand):
    help = "Re-wrap every at-rest epoch key under a new master key (stop all processes first)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--new-key-file", required=True, help="file holding the new MASTER_KEY")

    def handle(self, *args: Any, new_key_file: str, **options: Any) -> None:
        new_key = Path(new_key_file).read_text().strip()
        if new_key.lower() in PLACEHOLDER_SECRETS:
            raise CommandError("the new master key is empty or a placeholder")
        if new_key == settings.MASTER_KEY.strip():
            raise CommandError("the new master key is the current one")
        if settings.REDIS_URL:
            from messenger.beat import alive_beats

            if alive_beats():
                raise CommandError("beat is running: stop web, worker and beat first")
        with transaction.atomic():
            # The row locks keep a process that was not stopped from destroying or adding
            # keys halfway; it would block until the commit.
            rows = list(EpochKey.objects.select_for_update().order_by("pk"))
            for row in rows:
                try:
                    key = atrest._unwrap(row.epoch, bytes(row.wrapped_key))
                except (InvalidTag, ValueError):
                    raise CommandError(
                        f"epoch key {row.pk} does not unwrap under the current MASTER_KEY; "
                        "nothing was changed"
                    ) from None
                with override_settings(MASTER_KEY=new_key):
                    row.wrapped_key = atrest._wrap(row.epoch, key)
                    if atrest._unwrap(row.epoch, bytes(row.wrapped_key)) != key:
                        raise CommandError("re-wrapping did not verify; nothing was changed")
            EpochKey.objects.bulk_update(rows, ["wrapped_key"])
        self.stdout.write(
            f"re-wrapped {len(rows)} epoch keys. Now give every process the new MASTER_KEY "
            "and destroy every copy of the old one."
        )
