"""Moderator pages: the review queue, the review page with its decision, feature and suspend forms,
the money report of ended campaigns, refunds of collected pledges, and the operations figures.

Thin views: the rules (who may decide, which notes are required, which states allow what) live in
`campaigns.services`; a refused action comes back as a `CampaignError`, shown next to its field.
"""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app import clock
from app.accounts.decorators import moderator_required
from app.campaigns import services
from app.campaigns.models import Campaign, CampaignEvent, CampaignState
from app.campaigns.routes import _page_context as campaign_page_context
from app.community import reports
from app.extensions import db
from app.moderation import bp
from app.moderation.forms import DecisionForm, FeatureForm, PeriodForm, RefundForm, ResolveReportsForm, SuspendForm
from app.operations import charts as operations_charts
from app.operations import figures
from app.payouts import reconcile as reconciliation
from app.payouts import services as payouts
from app.payouts.forms import HoldForm
from app.pledges import services as pledges
from app.pledges.models import Pledge
from app.settlement import refunds, report

#: How many live campaigns the queue page lists (newest launches first).
LIVE_LIMIT = 50
#: How many of the creator's other campaigns the review page lists.
OTHERS_LIMIT = 50
#: How many collected (or refunded) pledges the review page of a funded campaign lists.
PLEDGES_LIMIT = 200


# --- reads -----------------------------------------------------------------------------------

def _live_campaigns(limit: int = LIVE_LIMIT) -> list[Campaign]:
    """Live campaigns for featuring and suspending: featured first, then newest launches. One query
    (the creator is joined by the relationship)."""
    return list(
        db.session.scalars(
            select(Campaign)
            .where(Campaign.state == CampaignState.LIVE.value)
            .order_by(Campaign.featured.desc(), Campaign.launched_at.desc(), Campaign.id.desc())
            .limit(limit)
        )
    )


def _other_campaigns(campaign: Campaign, limit: int = OTHERS_LIMIT) -> list[Campaign]:
    """The creator's other campaigns, newest first."""
    return list(
        db.session.scalars(
            select(Campaign)
            .where(Campaign.creator_id == campaign.creator_id, Campaign.id != campaign.id)
            .order_by(Campaign.created_at.desc(), Campaign.id.desc())
            .limit(limit)
        )
    )


def _history(campaign: Campaign) -> list[CampaignEvent]:
    """The campaign's audit rows, oldest first, with their actors loaded in one more query."""
    return list(
        db.session.scalars(
            select(CampaignEvent)
            .where(CampaignEvent.campaign_id == campaign.id)
            .order_by(CampaignEvent.created_at, CampaignEvent.id)
            .options(selectinload(CampaignEvent.actor))
        )
    )


def _event_label(action: str) -> str:
    """A readable name for an audit row's action, including the ones outside the state table."""
    extra = {"create": _("created"), "feature": _("featured"), "unfeature": _("taken off featured"),
             "payout_hold": _("payout held"), "payout_release": _("payout released")}
    return extra.get(action) or services.action_label(action)


def _event_note(event: CampaignEvent) -> str:
    """The note of an audit row; an edit after launch names what changed, in the reader's language."""
    if event.action != "edit":
        return event.note
    names = {"story": _("Story"), "risks": _("Risks and challenges"), "cover": _("Cover image")}
    return ", ".join(names.get(name, name) for name in event.note.split(", "))


def _campaign_or_404(slug: str) -> Campaign:
    campaign = services.get_by_slug(slug, offer=True)  # the review shows the whole offer
    if campaign is None:
        abort(404)
    return campaign


def _render_review(
    campaign: Campaign,
    decision_form: DecisionForm | None = None,
    suspend_form: SuspendForm | None = None,
    status: int = 200,
    resolve_form: ResolveReportsForm | None = None,
    hold_form: HoldForm | None = None,
):
    now = clock.utcnow()
    context = campaign_page_context(campaign, preview=True)
    open_reports, resolved_reports = reports.campaign_reports(campaign)
    return render_template(
        "moderation/review.html",
        **context,
        details_open=True,  # every destination and its cost, without a click per tier
        decision_form=decision_form or DecisionForm(formdata=None),
        suspend_form=suspend_form or SuspendForm(formdata=None),
        feature_form=FeatureForm(formdata=None, featured="0" if campaign.featured else "1"),
        own=campaign.creator_id == current_user.id,
        creator_age=now - campaign.creator.created_at,
        others=_other_campaigns(campaign),
        others_limit=OTHERS_LIMIT,
        history=_history(campaign),
        event_label=_event_label,
        event_note=_event_note,
        report=report.money_report(campaign),
        collected_pledges=refunds.refundable_pledges(campaign.id, PLEDGES_LIMIT) if campaign.state == CampaignState.SUCCESSFUL.value else [],
        pledges_limit=PLEDGES_LIMIT,
        pledge_state_name=pledges.state_name,
        open_reports=open_reports,
        resolved_reports=resolved_reports,
        resolve_form=resolve_form or ResolveReportsForm(formdata=None),
        reason_label=reports.reason_label,
        resolution_label=reports.resolution_label,
        payout_account=payouts.account_for(campaign.creator),
        payout=payouts.payout_of(campaign),
        payout_hold=(held := payouts.open_hold(campaign)),
        hold_form=hold_form or HoldForm(formdata=None, decision="release" if held else "hold"),
    ), status


def _refused(error: services.CampaignError, form, shown: bool) -> None:
    """Put a refusal next to its field when the form is on the page, else in a flash message."""
    if not (shown and form.show_error(error)):
        flash(str(error), "danger")


# --- pages -----------------------------------------------------------------------------------

@bp.route("")
@moderator_required
def queue():
    """Submitted campaigns waiting for a decision, oldest first, the reported ones (most reports
    first), and the live ones."""
    return render_template(
        "moderation/queue.html",
        reconciliation=reconciliation.last_run(),
        queue=services.moderation_queue(),
        reported=reports.reported_campaigns(),
        reported_limit=reports.QUEUE_LIMIT,
        live=_live_campaigns(),
        live_limit=LIVE_LIMIT,
        now=clock.utcnow(),
    )


@bp.route("/campaigns/<slug>", methods=["GET", "POST"])
@moderator_required
def review(slug: str):
    """The campaign as the public will see it, its creator and history, and the decision form."""
    campaign = _campaign_or_404(slug)
    if request.method == "GET":
        return _render_review(campaign)
    form = DecisionForm()
    shown = campaign.status == CampaignState.SUBMITTED and campaign.creator_id != current_user.id
    if form.validate_on_submit():
        decision = form.decision.data
        try:
            services.decide(campaign, current_user, decision, form.note.data or "")
        except services.CampaignError as error:
            db.session.rollback()
            _refused(error, form, shown)
        else:
            messages = {
                "approve": _("“%(title)s” is approved. The creator was told by email.", title=campaign.title),
                "request_changes": _("Changes requested for “%(title)s”. The creator was told by email.", title=campaign.title),
                "reject": _("“%(title)s” is rejected. The creator was told by email.", title=campaign.title),
            }
            flash(messages[decision], "success")
            return redirect(url_for("moderation.queue"))
    elif not shown:
        for errors in form.errors.values():
            for message in errors:
                flash(str(message), "danger")
    # The state may have been read before a refused change: show what is in the database.
    db.session.refresh(campaign)
    return _render_review(campaign, decision_form=form, status=422)


@bp.route("/campaigns/<slug>/feature", methods=["POST"])
@moderator_required
def feature(slug: str):
    """Put a campaign in the home page's Featured row ("1") or take it off ("0")."""
    campaign = _campaign_or_404(slug)
    form = FeatureForm()
    if not form.validate_on_submit():
        flash(_("Choose whether to feature the campaign."), "danger")
        return redirect(url_for("moderation.review", slug=slug))
    featured = form.featured.data == "1"
    try:
        services.set_featured(campaign, current_user, featured)
    except services.CampaignError as error:
        db.session.rollback()
        flash(str(error), "danger")
    else:
        flash(_("“%(title)s” is featured on the home page.", title=campaign.title) if featured
              else _("“%(title)s” is no longer featured.", title=campaign.title), "success")
    return redirect(url_for("moderation.review", slug=slug))


@bp.route("/campaigns/<slug>/suspend", methods=["POST"])
@moderator_required
def suspend(slug: str):
    """Stop a live campaign, with the reason; its pledges are released and its open reports closed."""
    campaign = _campaign_or_404(slug)
    form = SuspendForm()
    shown = campaign.status == CampaignState.LIVE
    if form.validate_on_submit():
        try:
            reports.suspend(campaign, current_user, form.note.data or "")
        except services.CampaignError as error:
            db.session.rollback()
            _refused(error, form, shown)
        else:
            flash(_("“%(title)s” is suspended. Its backers will not be charged.", title=campaign.title), "success")
            return redirect(url_for("moderation.review", slug=slug))
    elif not shown:
        for errors in form.errors.values():
            for message in errors:
                flash(str(message), "danger")
    db.session.refresh(campaign)
    return _render_review(campaign, suspend_form=form, status=422)


@bp.route("/campaigns/<slug>/reports", methods=["POST"])
@moderator_required
def resolve_reports(slug: str):
    """Resolve every open report of the campaign: dismiss them, or suspend the campaign (the same
    suspension as the suspend form: audit row, pledges released)."""
    campaign = _campaign_or_404(slug)
    form = ResolveReportsForm()
    if form.validate_on_submit():
        note = form.note.data or ""
        try:
            if form.resolution.data == "suspended":
                closed = reports.suspend(campaign, current_user, note)
            else:
                closed = reports.dismiss(campaign, current_user, note)
        except (reports.ReportError, services.CampaignError) as error:
            db.session.rollback()
            if not form.show_error(error):
                flash(str(error), "danger")
        else:
            if form.resolution.data == "suspended":
                flash(_("“%(title)s” is suspended and its reports are closed. Its backers will not be charged.", title=campaign.title), "success")
            else:
                flash(ngettext("%(num)d report on “%(title)s” is dismissed.", "%(num)d reports on “%(title)s” are dismissed.",
                               closed, title=campaign.title), "success")
            return redirect(url_for("moderation.queue"))
    for message in form.errors.get("csrf_token", []):
        flash(str(message), "danger")
    db.session.refresh(campaign)
    return _render_review(campaign, resolve_form=form, status=422)


@bp.route("/campaigns/<slug>/payout", methods=["POST"])
@moderator_required
def payout(slug: str):
    """Hold a funded campaign's payout with a note, or release it; each is an audit row."""
    campaign = _campaign_or_404(slug)
    form = HoldForm()
    if form.validate_on_submit():
        try:
            if form.decision.data == "hold":
                payouts.hold(campaign, current_user, form.note.data or "")
            else:
                payouts.release(campaign, current_user, form.note.data or "")
        except payouts.PayoutError as error:
            db.session.rollback()
            if not form.show_error(error):
                form.form_errors.append(str(error))
        else:
            flash(_("The payout of “%(title)s” is held.", title=campaign.title) if form.decision.data == "hold"
                  else _("The payout of “%(title)s” is released: it is paid when it is due.", title=campaign.title), "success")
            return redirect(url_for("moderation.review", slug=slug) + "#payout")
    for message in form.errors.get("csrf_token", []):
        flash(str(message), "danger")
    db.session.refresh(campaign)
    return _render_review(campaign, hold_form=form, status=422)


# --- refunds ---------------------------------------------------------------------------------

def _render_refund(pledge: Pledge, form: RefundForm, status: int = 200):
    return render_template(
        "moderation/refund.html", pledge=pledge, campaign=pledge.campaign, form=form,
        charge=refunds.collected_charge(pledge), state_name=pledges.state_name,
    ), status


@bp.route("/pledges/<id:pledge_id>/refund", methods=["GET", "POST"])
@moderator_required
def refund(pledge_id: int):
    """Refund a collected pledge in full, with a note kept in the audit log; the backer is emailed."""
    pledge = db.session.get(Pledge, pledge_id) or abort(404)
    if request.method == "GET":
        return _render_refund(pledge, RefundForm(formdata=None))
    form = RefundForm()
    if form.validate_on_submit():
        try:
            payouts.refund(pledge, current_user, form.note.data or "")
        except refunds.RefundError as error:
            if not form.show_error(error):
                flash(str(error), "danger")
        else:
            flash(_("The pledge of %(name)s is refunded. They were told by email.", name=pledge.backer.display_name), "success")
            return redirect(url_for("moderation.review", slug=pledge.campaign.slug) + "#pledges")
    for message in form.errors.get("csrf_token", []):
        flash(str(message), "danger")
    db.session.refresh(pledge)
    return _render_refund(pledge, form, 422)


# --- operations figures ----------------------------------------------------------------------

@bp.route("/operations")
@moderator_required
def operations():
    """The platform's figures over the last weeks (`?weeks=`), each a number, a chart and a table.
    A period that is not offered is refused next to its field (422) and the default one is shown."""
    form = PeriodForm(formdata=request.args if request.args else None)
    valid = form.validate()
    weeks = int(form.weeks.data) if valid else figures.DEFAULT_WEEKS
    return render_template(
        "moderation/operations.html", form=form, figures=figures.operations(weeks), charts=operations_charts,
    ), 200 if valid else 422
