"""Routes for reports and the creator's public profile with their track record. Thin views."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app import clock
from app.accounts.models import User
from app.caching import public_page
from app.campaigns import totals
from app.campaigns.lookups import visible_or_404
from app.community import bp, reports, track_record, transparency
from app.community.report_forms import ReportForm
from app.extensions import db

# The campaign page (and the preview and moderators' review, which share its body) call these.
bp.add_app_template_global(track_record.track_record, "creator_track_record")
bp.add_app_template_global(transparency.ended_figures, "ended_figures")


# --- the creator's public profile ------------------------------------------------------------

@bp.route("/creators/<id:user_id>")
@public_page
def creator(user_id: int):
    """A creator's public campaigns and track record. Members who never launched a public campaign
    have no public profile (404), so that backers' names are not listed by anyone counting ids."""
    if user_id > 2**31 - 1:
        abort(404)
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    shown = track_record.public_campaigns(user)
    own = current_user.is_authenticated and (current_user.id == user.id or current_user.is_moderator)
    if not shown and not own:
        abort(404)
    return render_template(
        "community/profile.html", creator=user, campaigns=shown, record=track_record.track_record(user),
        totals=totals.for_campaigns(shown), now=clock.utcnow(),
    )


# --- reports ---------------------------------------------------------------------------------

@bp.route("/campaigns/<slug>/report", methods=["GET", "POST"])
@login_required
def report(slug: str):
    """Report a live campaign to the moderators (one open report per member: a second one updates it)."""
    campaign = visible_or_404(slug)
    problem = reports.refusal(campaign, current_user)
    if problem:
        flash(problem, "warning")
        return redirect(url_for("campaigns.show", slug=slug))
    existing = reports.open_report(campaign, current_user)
    form = ReportForm(obj=existing if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            _row, created = reports.report(campaign, current_user, form.reason.data, form.note.data)
        except reports.ReportError as error:
            if not form.show_error(error):
                flash(str(error), "danger")
                return redirect(url_for("campaigns.show", slug=slug))
        else:
            flash(_("Thank you for telling us. A moderator will look at this campaign.") if created
                  else _("Your report is updated. A moderator will look at this campaign."), "success")
            return redirect(url_for("campaigns.show", slug=slug))
    return render_template("community/report_form.html", campaign=campaign, form=form, existing=existing), 422 if form.errors else 200
