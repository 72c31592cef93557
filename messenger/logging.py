"""Log scrubbing: the server's logs must never hold an address, a token or a path."""

from __future__ import annotations

import logging
import re

# IPv4, bracketed or bare IPv6 with at least two colons, and bearer tokens.
_ADDRESS = re.compile(
    r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
    r"|\[?\b(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}\b\]?(?::\d+)?"
)
_BEARER = re.compile(r"(?i)bearer\s+\S+")
# Paths carry capabilities (mailbox send ids, blob ids, handles): loggers that print a
# request line get their message replaced.
_REQUEST_LOGGERS = ("django.request", "django.server", "django.channels.server", "daphne")


class RedactRequestFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_REQUEST_LOGGERS):
            status = getattr(record, "status_code", None)
            record.msg = f"request failed with status {status}" if status else "request event"
            record.args = ()
        # The request object would otherwise reach any handler that formats extras.
        if hasattr(record, "request"):
            record.request = None
        message = record.getMessage()
        scrubbed = _BEARER.sub("Bearer [redacted]", _ADDRESS.sub("[address]", message))
        if scrubbed != message:
            record.msg = scrubbed
            record.args = ()
        return True
