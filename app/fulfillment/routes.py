"""Fulfillment pages. Thin views over the fulfillment services."""
from __future__ import annotations

import json

from flask import Response, flash, redirect, render_template, session, url_for
from flask_login import current_user, login_required, logout_user

from app import clock
from app.extensions import limiter
from app.fulfillment import bp, data_rights
from app.fulfillment.forms import DeleteAccountForm

# --- data rights ---------------------------------------------------------------------------------


@bp.app_template_global("delete_account_form")
def delete_account_form() -> DeleteAccountForm:
    """The profile page's danger zone (the profile belongs to accounts, which cannot import this area)."""
    return DeleteAccountForm(prefix="delete")


def _per_member() -> str:
    return f"member:{current_user.id}"  # the member, whichever browser they export from


@bp.route("/me/data")
@login_required
@limiter.limit("5 per hour", key_func=_per_member)
def my_data():
    """Everything Threshold holds about the member, as a JSON file to download (an audit row)."""
    data = data_rights.export_member(current_user)
    data_rights.record_export(current_user)
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
    filename = f"threshold-data-{clock.utcnow().date().isoformat()}.json"
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = f"attachment; filename={filename}"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/me/delete", methods=["POST"])
@login_required
def delete_account():
    """Delete the member's account after they typed their password; refusals are shown next to it."""
    form = DeleteAccountForm(prefix="delete")
    if form.validate_on_submit():
        try:
            done = data_rights.delete_account(current_user, form.password.data)
        except data_rights.DeletionRefused as error:
            form.show_error(error)
        else:
            logout_user()
            session.clear()
            flash(data_rights.deletion_summary(done), "info")
            return redirect(url_for("main.index"))
    # The profile page again, with the refusal next to the password (accounts' page, accounts' forms).
    from app.accounts.forms import PasswordForm, ProfileForm

    return render_template("accounts/profile.html", profile_form=ProfileForm(prefix="profile", obj=current_user),
                           password_form=PasswordForm(prefix="password"), delete_form=form), 422
