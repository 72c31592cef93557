"""Courier: the Python reference client of the messenger.

The package imports nothing from the server apps and nothing from Django: it talks to the server
only over its public HTTP and WebSocket API, exactly as the browser client does.
"""

from __future__ import annotations
