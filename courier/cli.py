"""The ``courier`` command line: an end-to-end encrypted messenger in a terminal.

Every command opens the encrypted state in ``--home`` (default ``$COURIER_HOME`` or
``~/.courier``) with the passphrase from ``$COURIER_PASSPHRASE`` or a prompt. User mistakes and
server errors are printed as one line on stderr with a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from courier.api import ApiError, TransportError
from courier.client import ClientError, Courier, Event, check_contact_name
from courier.store import NoState, StoreError, WrongPassphrase

DEFAULT_SERVER = "http://127.0.0.1:8000"
EXIT_ERROR = 1
EXIT_USAGE = 2


class CommandError(Exception):
    pass


def _default_home() -> str:
    return os.environ.get("COURIER_HOME") or str(Path.home() / ".courier")


def _passphrase(confirm: bool = False) -> str:
    value = os.environ.get("COURIER_PASSPHRASE")
    if value:
        return value
    if not sys.stdin.isatty():
        raise CommandError("no passphrase: set COURIER_PASSPHRASE or run in a terminal")
    first = getpass.getpass("Passphrase: ")
    if confirm:
        if len(first) < 8:
            raise CommandError("choose a passphrase of at least 8 characters")
        if getpass.getpass("Passphrase again: ") != first:
            raise CommandError("the passphrases differ")
    if not first:
        raise CommandError("the passphrase is empty")
    return first


class ProgressBar:
    """A one-line progress bar on stderr (only drawn when stderr is a terminal or forced)."""

    def __init__(self, label: str, out: TextIO = sys.stderr, force: bool = False) -> None:
        self.label = label
        self.out = out
        self.enabled = force or out.isatty()
        self.started = time.monotonic()
        self.last = -1
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if done < self.done:
            # A new transfer with the same bar (listen downloads one file after another).
            self.started, self.last = time.monotonic(), -1
        self.done = done
        percent = 100 if total == 0 else done * 100 // total
        if percent == self.last and done != total:
            return
        self.last = percent
        width = 30
        filled = width * percent // 100
        rate = done / max(time.monotonic() - self.started, 1e-6) / 1e6
        self.out.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {percent:3d}% "
            f"{done / 1e6:.1f}/{total / 1e6:.1f} MB {rate:.1f} MB/s"
        )
        if done >= total:
            self.out.write("\n")
        self.out.flush()


def _print_qr(text: str | bytes, out: TextIO) -> None:
    import segno

    segno.make(text, error="m").terminal(out=out, compact=True)


def _clock(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")


def _describe(event: Event) -> str:
    m = event.message
    if event.kind == "message":
        return f"[{_clock(m['at'])}] {event.contact}: {m['body']}"
    if event.kind == "file":
        return f"[{_clock(m['at'])}] {event.contact} sent a file: {m['name']} ({m['size']} bytes)"
    if event.kind == "download":
        return f"[{_clock(m['at'])}] saved {m['name']} from {event.contact} to {event.text}"
    if event.kind == "timer":
        seconds = m["seconds"]
        what = f"{seconds} s" if seconds else "off"
        return f"[{_clock(m['at'])}] {event.contact} set disappearing messages to {what}"
    if event.kind == "contact":
        return (
            f"new contact {event.contact!r} (rename: courier rename {event.contact} NAME;"
            f" compare: courier safety {event.contact})"
        )
    if event.kind == "reset":
        return f"{event.contact} started a new session (same identity key)"
    if event.kind == "download_failed":
        return (
            f"could not fetch {m['name']} from {event.contact}: {event.text}"
            f" (retry: courier download {event.contact} {m['id']})"
        )
    if event.kind == "expired":
        return f"a message with {event.contact} disappeared"
    return f"dropped an envelope for {event.contact}: {event.text}"


def _event_json(event: Event) -> str:
    return json.dumps(
        {
            "event": event.kind,
            "contact": event.contact,
            "message": event.message,
            "text": event.text,
        },
        sort_keys=True,
    )


# --- commands ---------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace, out: TextIO) -> int:
    home = Path(args.home)
    if (home / "state.bin").exists():
        raise CommandError(f"an identity already exists in {home}")
    passphrase = _passphrase(confirm=True)
    client = Courier.create(home, passphrase, args.server or DEFAULT_SERVER)
    try:
        info = client.whoami()
    finally:
        client.close()
    out.write(f"Created a new identity in {home} on {info['server']}.\n")
    out.write("Share your contact link with: courier link\n")
    return 0


def _open(args: argparse.Namespace) -> Courier:
    home = Path(args.home)
    if not (home / "state.bin").exists():
        raise CommandError(f"no identity in {home}: run `courier init` first")
    return Courier(home, _passphrase(), args.server, downloads=getattr(args, "downloads", None))


def cmd_link(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    link = client.contact_link()
    out.write(link + "\n")
    if not args.no_qr:
        _print_qr(link, out)
    return 0


def cmd_add(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    from courier.crypto.errors import EncodingError
    from courier.crypto.link import parse_contact_link

    name = args.name
    if name is None:
        try:
            name = "contact-" + parse_contact_link(args.link.strip()).fingerprint.hex()[:8]
        except (EncodingError, ValueError) as error:
            raise CommandError(f"this is not a valid contact link: {error}") from None
    check_contact_name(name)
    client.add_contact(args.link, name)
    out.write(f"Added {name}. Compare safety numbers with: courier safety {name}\n")
    return 0


def cmd_contacts(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    contacts = client.contacts()
    if args.json:
        out.write(json.dumps(contacts) + "\n")
        return 0
    if not contacts:
        out.write("No contacts yet. Add one with: courier add <link> [name]\n")
    for c in contacts:
        flags = ["verified" if c["verified"] else "not verified"]
        if c["timer"]:
            flags.append(f"timer {c['timer']} s")
        if not c["connected"]:
            flags.append("waiting for first reply")
        out.write(f"{c['name']:<24} {c['fingerprint']}  {', '.join(flags)}\n")
    return 0


def cmd_safety(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    groups, qr = client.safety_number(args.contact)
    out.write(f"Safety number with {args.contact}:\n")
    for row in range(0, 12, 4):
        out.write("  " + " ".join(groups[row : row + 4]) + "\n")
    if not args.no_qr:
        _print_qr(qr, out)
    out.write(
        "Compare it with your contact in person or over a trusted channel, then run:"
        f" courier verify {args.contact}\n"
    )
    return 0


def cmd_verify(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    client.verify(args.contact)
    out.write(f"Marked {args.contact} as verified.\n")
    return 0


def cmd_rename(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    client.rename(args.contact, args.new_name)
    out.write(f"Renamed {args.contact} to {args.new_name}.\n")
    return 0


def cmd_send(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    text = " ".join(args.text)
    if text == "-":
        text = sys.stdin.read().rstrip("\n")
    record = client.send_text(args.contact, text)
    if args.json:
        out.write(json.dumps(record) + "\n")
    return 0


def cmd_send_file(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    bar = ProgressBar(f"Uploading {Path(args.path).name}", force=args.progress)
    record = client.send_file(args.contact, args.path, progress=bar)
    out.write(f"Sent {record['name']} ({record['size']} bytes) to {args.contact}.\n")
    return 0


def cmd_timer(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    client.set_timer(args.contact, args.seconds)
    what = f"{args.seconds} seconds" if args.seconds else "off"
    out.write(f"Disappearing messages with {args.contact}: {what}.\n")
    return 0


def cmd_messages(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    messages = client.messages(args.contact)
    if args.json:
        out.write(json.dumps(messages) + "\n")
        return 0
    for m in messages:
        who = "me" if m["dir"] == "out" else args.contact
        if m["type"] == "text":
            what = m["body"]
        elif m["type"] == "file":
            what = (
                f"[file {m['name']}, {m['size']} bytes{', ' + m['path'] if m.get('path') else ''}]"
            )
        else:
            what = f"[timer {m['seconds']} s]"
        if m["dir"] == "out" and m.get("status") in ("queued", "delivered", "failed"):
            what += f"  ({m['status']})"
        out.write(f"[{_clock(m['at'])}] {who}: {what}\n")
    return 0


def _downloader(args: argparse.Namespace) -> Callable[[int, int], None] | None:
    return ProgressBar("Downloading", force=args.progress) if not args.no_download else None


def cmd_receive(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    events = client.receive(download=not args.no_download, progress=_downloader(args))
    for event in events:
        out.write((_event_json(event) if args.json else _describe(event)) + "\n")
    out.flush()
    return 0


def cmd_listen(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    stopping = {"flag": False}
    counted = {"n": 0}
    deadline = time.monotonic() + args.timeout if args.timeout else None

    def on_signal(signum: int, frame: Any) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)

    def stop() -> bool:
        if deadline is not None and time.monotonic() >= deadline:
            return True
        return stopping["flag"] or (args.count is not None and counted["n"] >= args.count)

    def on_event(event: Event) -> None:
        out.write((_event_json(event) if args.json else _describe(event)) + "\n")
        out.flush()
        if event.kind in ("message", "file", "timer"):
            counted["n"] += 1

    def on_status(status: str) -> None:
        if args.json:
            out.write(json.dumps({"event": "status", "text": status}) + "\n")
            out.flush()
        elif not args.quiet:
            sys.stderr.write(f"courier: {status}\n")

    client.listen(
        on_event,
        stop=stop,
        download=not args.no_download,
        progress=_downloader(args),
        on_status=on_status,
    )
    return 0


def cmd_download(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    path = client.download(
        args.contact, args.message_id, ProgressBar("Downloading", force=args.progress)
    )
    out.write(f"{path}\n")
    return 0


def cmd_whoami(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    info = client.whoami()
    out.write(f"server: {info['server']}\nfingerprint: {info['fingerprint']}\n")
    out.write(f"contacts: {info['contacts']}\n")
    return 0


def cmd_maintain(args: argparse.Namespace, client: Courier, out: TextIO) -> int:
    client.maintain()
    client.finish_pending()
    out.write("Prekeys, mailboxes and outbox are up to date.\n")
    return 0


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="courier",
        description="Courier: an anonymous, end-to-end encrypted messenger for the terminal.",
        epilog="The passphrase comes from $COURIER_PASSPHRASE or a prompt.",
    )
    parser.add_argument(
        "--server",
        help=f"server URL (default: the one chosen at init, else {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--home",
        default=_default_home(),
        help="directory of the encrypted state (default: $COURIER_HOME or ~/.courier)",
    )
    # The global options are accepted after the command too (`courier init --server URL`);
    # SUPPRESS keeps a subcommand from resetting what was given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--home", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def command(name: str, help_text: str, handler: Callable[..., int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(handler=handler)
        return p

    command("init", "create a new identity (and publish its prekeys)", cmd_init)
    p = command("link", "print my contact link and its QR code", cmd_link)
    p.add_argument("--no-qr", action="store_true", help="print the link only")
    p = command("add", "add a contact from their contact link", cmd_add)
    p.add_argument("link", help="the contact link (https://host/c#...)")
    p.add_argument("name", nargs="?", help="a name for the contact (default: from the key)")
    p = command("contacts", "list contacts", cmd_contacts)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = command("safety", "show the safety number to compare with a contact", cmd_safety)
    p.add_argument("contact")
    p.add_argument("--no-qr", action="store_true", help="do not draw the QR code")
    p = command("verify", "mark a contact's safety number as verified", cmd_verify)
    p.add_argument("contact")
    p = command("rename", "rename a contact", cmd_rename)
    p.add_argument("contact")
    p.add_argument("new_name")
    p = command("send", "send a text message ('-' reads it from stdin)", cmd_send)
    p.add_argument("contact")
    p.add_argument("text", nargs="+")
    p.add_argument("--json", action="store_true", help="print the stored message")
    p = command("send-file", "send a file (encrypted, in chunks)", cmd_send_file)
    p.add_argument("contact")
    p.add_argument("path")
    p.add_argument("--progress", action="store_true", help="draw the bar even when not a tty")
    p = command("timer", "set the disappearing-message timer (0 turns it off)", cmd_timer)
    p.add_argument("contact")
    p.add_argument("seconds", type=int)
    p = command("messages", "show the conversation with a contact", cmd_messages)
    p.add_argument("contact")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    for name, help_text, handler in (
        ("receive", "fetch waiting messages once and exit", cmd_receive),
        ("listen", "print messages as they arrive (Ctrl-C to stop)", cmd_listen),
    ):
        p = command(name, help_text, handler)
        p.add_argument("--json", action="store_true", help="one JSON object per line")
        p.add_argument("--no-download", action="store_true", help="do not fetch files")
        p.add_argument("--downloads", help="where received files go (default: HOME/downloads)")
        p.add_argument("--progress", action="store_true", help="draw bars even when not a tty")
        if name == "listen":
            p.add_argument("--count", type=int, help="stop after this many messages")
            p.add_argument("--timeout", type=float, help="stop after this many seconds")
            p.add_argument("--quiet", action="store_true", help="no connection status lines")
    p = command("download", "fetch a received file again", cmd_download)
    p.add_argument("contact")
    p.add_argument("message_id")
    p.add_argument("--downloads", help="where the file goes (default: HOME/downloads)")
    p.add_argument("--progress", action="store_true", help="draw the bar even when not a tty")
    command("whoami", "show my server and identity fingerprint", cmd_whoami)
    command("maintain", "top up prekeys, extend mailboxes, resend queued messages", cmd_maintain)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.handler is cmd_init:
            return cmd_init(args, out)
        client = _open(args)
        try:
            return args.handler(args, client, out)
        finally:
            client.close()
    except KeyboardInterrupt:
        return 130
    except WrongPassphrase:
        sys.stderr.write("courier: error: wrong passphrase\n")
    except NoState as error:
        sys.stderr.write(f"courier: error: {error} (run `courier init`)\n")
    except (CommandError, ClientError, StoreError) as error:
        sys.stderr.write(f"courier: error: {error}\n")
    except ApiError as error:
        sys.stderr.write(f"courier: the server refused: {error.message} ({error.code})\n")
    except TransportError as error:
        sys.stderr.write(f"courier: error: {error}\n")
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
