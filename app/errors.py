"""Styled error pages that cannot fail: no URL adapter, no database, no session needed.

An error page is drawn when something else broke: the Host header was malformed (no URL adapter,
so no url_for), the database is gone (so no member, and no member's language), the session cookie
is bad. So it is its own small template — links by path, the language from the request alone —
and the security headers are added by the same after_request hook as every page.
"""
from __future__ import annotations

from flask import Flask, current_app, request
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.i18n import html_lang, visitor_locale


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
    """The error page (or JSON for Stripe and API clients) in the visitor's language."""
    locale = visitor_locale()
    with force_locale(locale):
        title, default = _titles().get(code, (_("Error"), _("Something went wrong.")))
        text = str(message) if message else default
        if request.path.startswith("/stripe/") or request.accept_mimetypes.best == "application/json":
            return {"error": title, "message": text}, code
        # Straight from the environment: the context processors would load the member (the database).
        template = current_app.jinja_env.get_template("errors/error.html")
        return template.render(code=code, title=title, message=text, root=request.script_root,
                               error_lang=html_lang(locale)), code


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        return render_error(400, _l("Your form expired or was sent from elsewhere. Please reload the page and try again."))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        return render_error(error.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        try:
            db.session.rollback()
        except Exception:  # the database may be what failed; the page must still be drawn
            app.logger.warning("rollback failed after an error", exc_info=True)
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        return render_error(500)
