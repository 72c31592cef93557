"""Rotate the at-rest keys now: fresh keys for new data, destroy every expired epoch key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from messenger.atrest import retire_current_keys, rotate_epoch_keys


class Command(BaseCommand):
    help = (
        "Retire the current epoch keys (new data is sealed under fresh keys; retired keys "
        "still decrypt until their epoch ends) and destroy the keys of ended epochs."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        retired = retire_current_keys()
        destroyed = rotate_epoch_keys()["destroyed"]
        self.stdout.write(f"retired {retired} current epoch keys; destroyed {destroyed} expired")
