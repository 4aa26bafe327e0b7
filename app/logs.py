"""Logs: one line per request, and a request id on every line of that request and of the worker's
lines about a pledge that request made or last changed.

Every log record carries `request_id`: the id of the request being served, or the one the worker
named with `request_id_of(...)` while it logs about a pledge, or "-". A request's id is the
`X-Request-Id` header its proxy set (believed only behind TRUSTED_PROXIES, and only when well formed:
it goes into logs and the database), else a new one; the response carries it back in the same header.
A pledge keeps the id of the request that created or last changed it (`Pledge.request_id`), so the
worker's lines about charging or releasing it lead back to the backer's request.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import time
import uuid

from flask import Flask, Response, g, has_request_context, request

HEADER = "X-Request-Id"
#: What an incoming id may look like: nginx's $request_id (32 hex digits), a UUID, a load balancer's
#: trace id. Anything else (too long, spaces, quotes, newlines that would forge a log line) is replaced.
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")
#: The request id before the logger's name, so that "threshold.settlement: campaign …" stays one string to search.
FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"

log = logging.getLogger("threshold.requests")
#: The id the worker is logging about (a pledge's request), outside any request.
_named: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_installed = False


def current_request_id() -> str | None:
    """The id of the request being served; None outside a request."""
    return g.get("request_id") if has_request_context() else None


@contextlib.contextmanager
def request_id_of(request_id: str | None):
    """Lines logged inside carry this id (the worker, about a pledge that a request made)."""
    token = _named.set(request_id)
    try:
        yield
    finally:
        _named.reset(token)


def _install_record_factory() -> None:
    """Give every log record of the process a `request_id` (handlers of any kind, caplog too)."""
    global _installed
    if _installed:
        return
    base = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.request_id = _named.get() or current_request_id() or "-"
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def _start(trusted: bool) -> None:
    given = request.headers.get(HEADER, "")
    g.request_id = given if trusted and WELL_FORMED.fullmatch(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish(response: Response) -> Response:
    if "request_id" not in g:  # an error while Flask set the request up: no before_request ran
        _start(trusted=False)
    response.headers[HEADER] = g.request_id
    # The member, if this request looked them up (every page does; a static file or a webhook does
    # not, and is not made to: no query for the log). The id only: get_id() names the login session.
    user = g.get("_login_user")
    log.info("%s %s %s %.1fms user=%s", request.method, request.path, response.status_code,
             (time.perf_counter() - g.request_started) * 1000,
             user.id if user is not None and user.is_authenticated else "-")
    return response


def init_app(app: Flask) -> None:
    """Log to standard error in FORMAT; a request id for every request, one line when it ends."""
    _install_record_factory()
    logging.basicConfig(level=logging.INFO, format=FORMAT)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    trusted = bool(app.config["TRUSTED_PROXIES"])  # then the header comes from our proxy, not the client
    app.before_request(lambda: _start(trusted))
    app.after_request(_finish)
