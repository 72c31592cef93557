"""The `courier` command line: help, clear one-line errors, link and QR code, safety numbers."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from courier.cli import build_parser, main
from tests.support.servers import ServerStack, free_port


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue(), capsys.readouterr().err


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COURIER_PASSPHRASE", "correct horse battery")
    return "correct horse battery"


def test_the_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for command in (
        "init",
        "link",
        "add",
        "contacts",
        "safety",
        "verify",
        "send",
        "send-file",
        "receive",
        "listen",
        "timer",
        "messages",
    ):
        assert re.search(rf"^\s+{command}\s", text, re.M), command


def test_a_missing_identity_is_a_clear_error(
    tmp_path: Path, passphrase: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["--home", str(tmp_path), "contacts"], capsys)
    assert code == 1
    assert err.startswith("courier: error: no identity") and "courier init" in err
    assert "Traceback" not in err


def test_an_unreachable_server_is_a_clear_error(
    tmp_path: Path, passphrase: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(["--home", str(tmp_path), "init", "--server", url], capsys)
    assert code == 1
    assert err.startswith("courier: error: cannot reach") and "Traceback" not in err
    # Nothing half-made is left behind: init can be run again.
    code, _, err = run(["--home", str(tmp_path), "init", "--server", url], capsys)
    assert code == 1 and "cannot reach" in err


def test_a_missing_passphrase_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COURIER_PASSPHRASE", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(["--home", str(tmp_path), "init"], capsys)
    assert code == 1 and "COURIER_PASSPHRASE" in err


@pytest.mark.e2e
def test_init_link_add_safety_verify_and_errors(
    stack: ServerStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice, bob = str(tmp_path / "alice"), str(tmp_path / "bob")
    monkeypatch.setenv("COURIER_PASSPHRASE", "alice's passphrase")
    assert run(["--home", alice, "init", "--server", stack.url()], capsys)[0] == 0
    code, _, err = run(["--home", alice, "init"], capsys)
    assert code == 1 and "already exists" in err

    monkeypatch.setenv("COURIER_PASSPHRASE", "bob's passphrase")
    assert run(["--server", stack.url(), "--home", bob, "init"], capsys)[0] == 0
    code, out, _ = run(["--home", bob, "link"], capsys)
    link = out.splitlines()[0]
    assert code == 0 and link.startswith("https://127.0.0.1:") and "/c#" in link
    assert "█" in out or "▀" in out or "▄" in out  # the QR code, drawn in the terminal

    monkeypatch.setenv("COURIER_PASSPHRASE", "not bob's passphrase")
    code, _, err = run(["--home", bob, "contacts"], capsys)
    assert (code, err) == (1, "courier: error: wrong passphrase\n")

    monkeypatch.setenv("COURIER_PASSPHRASE", "alice's passphrase")
    code, _, err = run(["--home", alice, "add", "https://h/c#nonsense", "bob"], capsys)
    assert code == 1 and "not a valid contact link" in err and "Traceback" not in err
    assert run(["--home", alice, "add", link, "bob"], capsys)[0] == 0
    code, _, err = run(["--home", alice, "send", "carol", "hi"], capsys)
    assert code == 1 and "no contact named 'carol'" in err
    code, out, _ = run(["--home", alice, "safety", "bob", "--no-qr"], capsys)
    groups = re.findall(r"\b\d{5}\b", out)
    assert code == 0 and len(groups) == 12
    assert run(["--home", alice, "verify", "bob"], capsys)[0] == 0
    code, out, _ = run(["--home", alice, "contacts"], capsys)
    assert re.search(r"^bob\s.*\bverified\b.*waiting for first reply", out, re.M)

    monkeypatch.setenv("COURIER_PASSPHRASE", "bob's passphrase")
    code, out, _ = run(["--home", bob, "receive"], capsys)
    (name,) = re.findall(r"new contact '([^']+)'", out)
    assert run(["--home", bob, "rename", name, "alice"], capsys)[0] == 0
    code, out, _ = run(["--home", bob, "safety", "alice", "--no-qr"], capsys)
    assert re.findall(r"\b\d{5}\b", out) == groups  # the same number on both sides
    code, _, err = run(["--home", bob, "timer", "alice", "-5"], capsys)
    assert code == 1 and "timer" in err
    code, _, err = run(["--home", bob, "send-file", "alice", str(tmp_path / "nope")], capsys)
    assert code == 1 and "no such file" in err


def test_it_is_installed_as_the_courier_console_script() -> None:
    import subprocess
    import sys
    import tomllib

    root = Path(__file__).resolve().parents[2]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["courier"] == "courier.cli:main"
    # The script pip generated for this environment (`pip install -e .` after courier/ exists).
    script = Path(sys.executable).parent / "courier"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: courier")
