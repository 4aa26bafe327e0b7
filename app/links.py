"""Links that leave the site — mail, its headers, exports: always built from BASE_URL.

Never from the request: its Host header is whatever the sender typed, and a reset link built from
it would carry a member's token to another site (issue 14, finding 1).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app


def external_url(endpoint: str, **values) -> str:
    """The absolute URL of `endpoint` on the site BASE_URL names (scheme, host, port and any path)."""
    base = urlsplit(current_app.config["BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)


def init_app(app: Flask) -> None:
    """Templates (mail above all) call `external_url(...)` where they would have used _external=True."""
    app.jinja_env.globals["external_url"] = external_url
