"""Email preferences: the member's settings page, and the unsubscribe link every email carries.

The link works without logging in (its signed token names the member and the mail's category). Its
GET shows a confirm page; the confirm button POSTs with a CSRF token. Mail clients that honour
RFC 8058 POST `List-Unsubscribe=One-Click` to the same address without any token or cookie: that POST
alone is exempt from CSRF (the signed token in the address is what authorises it).
"""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.accounts import bp, services
from app.accounts.forms import NotificationsForm, UnsubscribeForm
from app.extensions import csrf
from app.notifications.services import CATEGORIES, wants


def _category_name(category: str) -> str:
    return {"updates": _("updates from campaigns you back"), "replies": _("replies to your comments"),
            "reminders": _("reminders for campaigns you saved"), "backers": _("new backers of your campaigns"),
            "moderation": _("campaigns to review and new reports")}.get(category, category)


def _preferences_form(user) -> NotificationsForm:
    """The settings form, filled from `user` on GET; the moderation choice only for moderators."""
    form = NotificationsForm(obj=user if request.method == "GET" else None)
    if not user.is_moderator:
        del form.email_moderation
    return form


@bp.route("/notifications", methods=["GET", "POST"])
@login_required
def notifications():
    """Choose the optional emails; the page says which ones are always sent."""
    form = _preferences_form(current_user)
    if form.validate_on_submit():
        services.set_notifications(current_user, **form.choices())
        flash(_("Your email settings are saved."), "success")
        return redirect(url_for("accounts.notifications"))
    return render_template("accounts/notifications.html", form=form), 422 if form.errors else 200


def _one_click() -> bool:
    return request.method == "POST" and request.form.get("List-Unsubscribe") == "One-Click"


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # only for RFC 8058's one-click POST: every other POST is checked below
def unsubscribe(token: str):
    """Stop one kind of optional email from a link in an email, without logging in."""
    one_click = _one_click()
    if request.method == "POST" and not one_click and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()  # a 400 without a valid token, as for every other form
    target = services.unsubscribe_target(token)
    if target is None:
        if one_click:
            abort(404)
        return render_template("accounts/unsubscribe.html", user=None, category=None, form=None), 404
    user, category = target
    if one_click:
        services.unsubscribe(user, category)
        return _("You are unsubscribed."), 200, {"Content-Type": "text/plain; charset=utf-8"}
    if category == "all":  # a transactional mail's link: the settings themselves
        form = _preferences_form(user)
        if form.validate_on_submit():
            services.set_notifications(user, **form.choices())
            flash(_("Your email settings are saved."), "success")
            return redirect(url_for("accounts.unsubscribe", token=token))
    else:
        form = UnsubscribeForm()
        if form.validate_on_submit():
            services.unsubscribe(user, category)
            flash(_("Done: you no longer get emails about %(what)s.", what=_category_name(category)), "success")
            return redirect(url_for("accounts.unsubscribe", token=token))
    return render_template(
        "accounts/unsubscribe.html", user=user, category=category, form=form, what=_category_name(category),
        subscribed=category in CATEGORIES and wants(user, category),
    ), 422 if form.errors else 200
