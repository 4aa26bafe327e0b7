"""Small factories and helpers for tests: real rows through the real services."""
from __future__ import annotations

import itertools
import re

from app.accounts import services as accounts
from app.accounts.models import User

_seq = itertools.count(1)
PASSWORD = "correct horse battery"


def make_user(email: str | None = None, *, name: str | None = None, password: str = PASSWORD, moderator: bool = False) -> User:
    n = next(_seq)
    return accounts.register(email or f"user{n}@example.com", name or f"User {n}", password, moderator=moderator)


def login(client, email: str, password: str = PASSWORD, **extra):
    return client.post("/auth/login", data={"email": email, "password": password, **extra})


def csrf_token(client, path: str) -> str:
    """The CSRF token of the form on `path`."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, f"no CSRF token on {path}"
    return match.group(1)
