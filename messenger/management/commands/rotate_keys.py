"""Rotate the at-rest keys now: fresh keys for new data, destroy every expired epoch key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from messenger.atrest import retire_current_keys, rotate_epoch_keys
from messenger.checks import unreadable_epoch_keys
from messenger.models import EpochKey


class Command(BaseCommand):
    help = (
        "Retire the current epoch keys (new data is sealed under fresh keys; retired keys "
        "still decrypt until their epoch ends) and destroy the keys of ended epochs."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--destroy-unreadable",
            action="store_true",
            help="also destroy the epoch keys the current MASTER_KEY cannot unwrap (after "
            "losing the old master key: their data is shredded and skipped by readers)",
        )

    def handle(self, *args: Any, destroy_unreadable: bool, **options: Any) -> None:
        retired = retire_current_keys()
        destroyed = rotate_epoch_keys()["destroyed"]
        self.stdout.write(f"retired {retired} current epoch keys; destroyed {destroyed} expired")
        if destroy_unreadable:
            unreadable = EpochKey.objects.filter(pk__in=unreadable_epoch_keys())
            unreadable.update(wrapped_key=b"\x00" * 40)
            count, _ = unreadable.delete()
            self.stdout.write(f"destroyed {count} epoch keys the master key does not unwrap")
