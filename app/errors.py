"""Styled error pages; a database error never leaves the session unusable."""
from __future__ import annotations

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.extensions import db


def _titles() -> dict[int, tuple[str, str]]:
    return {
        400: (_("Bad request"), _("The request could not be understood. Please go back and try again.")),
        403: (_("Not allowed"), _("You do not have permission to see this page.")),
        404: (_("Page not found"), _("We could not find that page. It may have moved or never existed.")),
        405: (_("Not allowed"), _("That action is not available here.")),
        413: (_("Too large"), _("The file you sent is too large.")),
        429: (_("Slow down"), _("Too many attempts in a short time. Please wait a minute and try again.")),
        500: (_("Something went wrong"), _("An unexpected error happened on our side. Please try again.")),
    }


def render_error(code: int, message: str | None = None):
    title, default = _titles().get(code, (_("Error"), _("Something went wrong.")))
    if request.path.startswith("/stripe/") or request.accept_mimetypes.best == "application/json":
        return {"error": title, "message": message or default}, code
    return render_template("errors/error.html", code=code, title=title, message=message or default), code


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        return render_error(400, _("Your form expired or was sent from elsewhere. Please reload the page and try again."))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        return render_error(error.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        db.session.rollback()
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        return render_error(500)
