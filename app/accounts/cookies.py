"""The session cookie: Flask's signed cookie, its checked contents remembered for the next request
that sends the same cookie.

A member sends the same session cookie with every request until their session changes. Checking its
signature and reading its JSON again each time was ~70 µs of the ~400 a member's request adds to a
visitor's (itsdangerous derives its key and signs anew, then the tagged JSON is walked); here a process
checks a cookie once and remembers what it held, keyed on the cookie's whole text and the secret key, so
a cookie that differs in one character is checked as any other. Each request still gets a session of
its own (a copy), its age is still held against the session's lifetime as the signature's timestamp
says, and only a cookie whose values are all plain (text, numbers, flags) is remembered: a list, such as
the flash messages, is changed in place by the request that reads it.
"""
from __future__ import annotations

import time

from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

from app.caching import Memo

_PLAIN = (str, int, float, bool, type(None))


class RememberedCookieSessions(SecureCookieSessionInterface):
    #: Cookies remembered per process (the least recently sent dropped first).
    remembered = 2048

    def __init__(self) -> None:
        self._known = Memo(self.remembered)  # (secret key, cookie) -> (values, signed at)

    def open_session(self, app, request):
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie or not app.secret_key:
            return super().open_session(app, request)
        lifetime = int(app.permanent_session_lifetime.total_seconds())
        key = (app.secret_key, cookie)
        known = self._known.get(key)
        if known is not None and 0 <= time.time() - known[1] <= lifetime:
            return self.session_class(known[0])
        try:
            values, signed_at = self.get_signing_serializer(app).loads(cookie, max_age=lifetime, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if all(isinstance(value, _PLAIN) for value in values.values()):
            self._known.put(key, (values, signed_at.timestamp()))
        return self.session_class(values)
