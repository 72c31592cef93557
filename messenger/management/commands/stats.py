"""Print aggregate counts and sizes that reveal nothing about any user."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from messenger.stats import DESCRIPTIONS, collect


class Command(BaseCommand):
    help = "Counts and sizes of stored data, aggregate only (see docs/operations.md)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        numbers = collect()
        if options["json"]:
            self.stdout.write(json.dumps(numbers, indent=2))
            return
        width = max(len(name) for name in numbers)
        for name, value in numbers.items():
            self.stdout.write(f"{name:<{width}}  {value:>14,}  {DESCRIPTIONS[name]}")
