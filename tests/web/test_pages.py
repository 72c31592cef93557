"""The web client's pages: rendered by Django, every script and style from our own origin with
Subresource Integrity, no inline script or style, the hooks the browser tests rely on."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

STATIC = Path(__file__).resolve().parents[2] / "static"
PAGES = ["/", "/security", "/policy", "/app", "/c"]
HOOKS = [
    "create-identity",
    "passphrase",
    "unlock",
    "invite-link",
    "add-contact-input",
    "add-contact-submit",
    "compose-input",
    "send-button",
    "file-input",
    "file-progress",
    "safety-number",
    "mark-verified",
    "disappear-select",
]


def sri(path: str) -> str:
    digest = hashlib.sha384((STATIC / path).read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode()


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_without_inline_script_or_style(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>" not in html and re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    assert " style=" not in html and "<style" not in html
    assert re.search(r"\son[a-z]+=", html) is None  # no inline event handlers
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", PAGES)
def test_every_script_and_stylesheet_carries_its_integrity_hash(client: Client, path: str) -> None:
    html = client.get(path).content.decode()
    tags = re.findall(r"<(?:script|link)[^>]+/static/[^>]+\.(?:js|css)\"[^>]*>", html)
    assert tags
    for tag in tags:
        path_match = re.search(r"/static/([^\"]+)", tag)
        assert path_match
        assert f'integrity="{sri(path_match.group(1))}"' in tag, tag
        assert 'crossorigin="anonymous"' in tag


def test_the_app_preloads_every_module_it_imports_with_integrity(client: Client) -> None:
    html = client.get("/app").content.decode()
    preloaded = set(re.findall(r'rel="modulepreload" href="/static/(js/[^"]+)"', html))
    imported = set()
    for module in (STATIC / "js").glob("*.js"):
        for name in re.findall(r'from "\./([a-z]+\.js)"', module.read_text()):
            imported.add(f"js/{name}")
    assert imported - {"js/drbg.js"} <= preloaded


def test_the_app_page_has_every_test_hook(client: Client) -> None:
    html = client.get("/app").content.decode()
    for hook in HOOKS:
        assert f'data-testid="{hook}"' in html, hook


def test_the_policy_page_shows_the_servers_limits(client: Client, settings) -> None:
    html = client.get("/policy").content.decode()
    assert str(settings.ENVELOPE_MAX_TTL_SECONDS) in html
    assert "1024, 4096, 16384, 65536" in html


def test_pages_refuse_other_methods(client: Client) -> None:
    assert client.post("/app").status_code == 405
