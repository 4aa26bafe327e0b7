"""Settlement pages: the creator's backer list (CSV), and the backer's fixes of a failed payment.

The money report itself is offered to the campaign templates as a template global (`campaigns` sits
below `settlement` and cannot import it), like the pledges chart. Thin views.
"""
from __future__ import annotations

from flask import Response, abort, flash, jsonify, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.campaigns import services as campaigns
from app.extensions import db, limiter
from app.payments import gateway
from app.pledges import services as pledges
from app.pledges.forms import ConfirmForm
from app.pledges.models import PledgeState
from app.settlement import bp, recovery, report

P = PledgeState


# --- for the templates -----------------------------------------------------------------------

bp.add_app_template_global(report.money_reports, "money_reports")
bp.add_app_template_global(report.money_report, "money_report")
bp.add_app_template_global(report.collected_total, "collected_total")
bp.add_app_template_global(recovery.payment_fix, "payment_fix")
bp.add_app_template_global(recovery.backer_status, "backer_status")


# --- the creator's backer list ---------------------------------------------------------------

@bp.route("/campaigns/<slug>/backers.csv")
@login_required
def backers_csv(slug: str):
    """The campaign's backers as CSV, for its creator and moderators (others: 404 unless public, then 403)."""
    campaign = campaigns.get_by_slug(slug)
    if campaign is None or not campaigns.can_view(campaign, current_user):
        abort(404)
    if not (campaigns.is_creator(campaign, current_user) or current_user.is_moderator):
        abort(403)
    return Response(
        report.backers_csv(campaign), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{campaign.slug}-backers.csv"', "Cache-Control": "private, no-store"},
    )


# --- the backer fixes a failed payment -------------------------------------------------------

def _own_pledge_or_404(pledge_id: int):
    return pledges.get_for_backer(pledge_id, current_user) or abort(404)


def _back_to(pledge):
    return redirect(url_for("pledges.show", pledge_id=pledge.id))


def _flash_outcome(pledge, outcome: str | None, *, new_card: bool) -> None:
    """Tell the backer how it went, from the pledge's state as recorded (re-read) and the attempt's outcome."""
    db.session.refresh(pledge)
    if pledge.state == P.COLLECTED.value:
        flash(_("Thank you! Your payment went through and your pledge is collected."), "success")
    elif pledge.state != P.ERRORED.value:
        flash(_("This pledge is %(state)s.", state=pledges.state_name(pledge.state).lower()), "info")
    elif outcome == "processing":
        flash(_("Your bank is still processing the payment. We will email you when it is done."), "info")
    elif new_card and outcome in (None, "postponed"):
        flash(_("Your new card is saved. We could not charge it just now and will try again shortly."), "warning")
    elif new_card:
        flash(_("Your new card is saved, but the payment did not go through. See the reason below."), "danger")
    else:
        flash(_("The payment is not confirmed yet. If you completed your bank’s check, look again in a minute."), "warning")


@bp.route("/pledges/<id:pledge_id>/payment", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def payment(pledge_id: int):
    """After Stripe.js ran the bank's authentication: read the charge from Stripe and record it."""
    pledge = _own_pledge_or_404(pledge_id)
    if pledge.state != P.ERRORED.value:
        flash(_("This pledge is %(state)s: there is no payment to confirm.", state=pledges.state_name(pledge.state).lower()), "info")
        return _back_to(pledge)
    try:
        outcome = recovery.confirm_authenticated(pledge)
    except gateway.GatewayError as error:
        flash(error.message, "danger")
        return _back_to(pledge)
    _flash_outcome(pledge, outcome, new_card=False)
    return _back_to(pledge)


@bp.route("/pledges/<id:pledge_id>/fix-card", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def fix_card(pledge_id: int):
    """Start saving another card for an errored pledge (answers the script with a setup secret)."""
    pledge = _own_pledge_or_404(pledge_id)
    try:
        client_secret = pledges.begin_payment_fix(pledge, current_user)
    except (pledges.PledgeError, gateway.GatewayError) as error:
        return jsonify(errors={"_": [getattr(error, "message", None) or str(error)]}), 422
    return jsonify(client_secret=client_secret, confirm_url=url_for("settlement.fix_card_confirm", pledge_id=pledge.id))


@bp.route("/pledges/<id:pledge_id>/fix-card/confirm", methods=["POST"])
@login_required
def fix_card_confirm(pledge_id: int):
    """The new card is confirmed by Stripe.js: save it (read back from Stripe), then charge it at once."""
    pledge = _own_pledge_or_404(pledge_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        outcome = recovery.fix_with_new_card(pledge, current_user, form.setup_intent.data)
    except pledges.PledgeError as error:
        flash(str(error), "danger")
        return _back_to(pledge)
    _flash_outcome(pledge, outcome, new_card=True)
    return _back_to(pledge)
