"""Subresource Integrity for our own static files: `{% script "js/app.js" %}`."""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from django import template
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@cache
def integrity(path: str) -> str:
    found = finders.find(path)
    if not found:
        raise template.TemplateSyntaxError(f"static file {path!r} not found")
    with open(found, "rb") as handle:
        digest = hashlib.sha384(handle.read()).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")


@register.simple_tag
def script(path: str) -> SafeString:
    return format_html(
        '<script type="module" src="{}" integrity="{}" crossorigin="anonymous"></script>',
        static(path),
        integrity(path),
    )


@register.simple_tag
def stylesheet(path: str) -> SafeString:
    return format_html(
        '<link rel="stylesheet" href="{}" integrity="{}" crossorigin="anonymous">',
        static(path),
        integrity(path),
    )
