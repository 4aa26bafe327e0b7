"""Route guards."""
from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required


def moderator_required(view):
    """Log-in required, then 403 unless the member is a moderator."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_moderator:
            abort(403)
        return view(*args, **kwargs)

    return wrapped
