"""Fulfillment pages. Thin views; each part keeps to its own section (surveys, data rights and
fulfillment are written side by side)."""
from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app import clock
from app.campaigns import services as campaigns
from app.campaigns.lookups import visible_or_404
from app.campaigns.models import CampaignState
from app.campaigns.shipping import country_name
from app.fulfillment import bp, shipments
from app.fulfillment.forms import DeliveredForm, FilterForm, ImportForm, MessageForm, ProblemForm, ShipForm
from app.fulfillment.models import ItemState

# --- fulfillment ---


def _pledge_items(pledge):
    """The pledge page's items, for its backer only: (items, threads)."""
    if not getattr(current_user, "is_authenticated", False) or current_user.id != pledge.backer_id:
        return [], {}
    items = shipments.items_of_pledge(pledge)
    return items, shipments.threads(items)


def _on_its_way():
    """The member's shipped items, for the backer dashboard (one query)."""
    if not getattr(current_user, "is_authenticated", False):
        return []
    return shipments.on_its_way(current_user)


@bp.app_context_processor
def _fulfillment_context():
    # The pledges floor sits below this one: its templates reach fulfillment through these names only.
    return {
        "fulfillment_items": _pledge_items,
        "fulfillment_on_its_way": _on_its_way,
        "fulfillment_state_name": shipments.state_name,
        "fulfillment_problem_name": shipments.problem_name,
        "fulfillment_item_name": shipments.item_name,
        "fulfillment_tracking_link": shipments.tracking_link,
    }


def _campaign(slug: str, *, write: bool):
    """The funded campaign at `slug` for its creator (moderators too when only reading): 404 when it
    is not visible or not funded, 403 for anyone else who can see it."""
    campaign = visible_or_404(slug)
    creator = campaigns.is_creator(campaign, current_user)
    if not (creator or (not write and current_user.is_moderator)):
        abort(403)
    if campaign.state != CampaignState.SUCCESSFUL:
        abort(404)
    return campaign


def _filters(campaign) -> tuple[FilterForm, dict]:
    form = FilterForm(formdata=request.args)
    tiers = sorted((tier for tier in campaign.tiers), key=lambda tier: (tier.amount, tier.id))
    form.tier.choices = [("", _("All rewards"))] + [(str(tier.id), tier.title) for tier in tiers]
    form.country.choices = [("", _("All countries"))] + [(code, country_name(code)) for code in shipments.countries(campaign)]
    form.state.choices = [("", _("All states"))] + [(state.value, shipments.state_name(state)) for state in ItemState]
    tier = form.tier.data if (form.tier.data or "").isdigit() and len(form.tier.data) < 10 else None
    country = form.country.data if form.country.data in dict(form.country.choices) and form.country.data else None
    state = form.state.data if form.state.data in {state.value for state in ItemState} else None
    page = request.args.get("page", "1")
    return form, {"tier_id": int(tier) if tier else None, "country": country, "state": state,
                  "page": int(page) if page.isdigit() and len(page) < 7 else 1}


def _render_page(campaign, *, status: int = 200, import_form=None, result=None, ship_form=None, ship_item_id=None):
    shipments.ensure_items(campaign)
    filter_form, chosen = _filters(campaign)
    found = shipments.listing(campaign, **chosen)
    problems = shipments.problems(campaign)
    creator = campaigns.is_creator(campaign, current_user)
    args = {key: value for key, value in (("tier", chosen["tier_id"]), ("country", chosen["country"]),
                                          ("state", chosen["state"])) if value}
    return render_template(
        "fulfillment/page.html", campaign=campaign, counts=shipments.counts(campaign), listing=found,
        filter_form=filter_form, filter_args=args, problems=problems, threads=shipments.threads(problems),
        can_write=creator, import_form=import_form or ImportForm(), result=result,
        ship_form=ship_form, ship_item_id=ship_item_id, message_form=MessageForm(), today=clock.utcnow().date(),
        columns=shipments.IMPORT_COLUMNS, max_mb=shipments.IMPORT_MAX_BYTES // (1024 * 1024),
    ), status


@bp.route("/campaigns/<slug>/fulfillment")
@login_required
def page(slug: str):
    """The creator's fulfillment page (moderators read it): counts, filters, items, import, problems."""
    return _render_page(_campaign(slug, write=False))


@bp.route("/campaigns/<slug>/fulfillment/import", methods=["POST"])
@login_required
def import_tracking(slug: str):
    """Check a tracking CSV (dry run), or apply it when every row is right."""
    campaign = _campaign(slug, write=True)
    form = ImportForm()
    if not form.validate_on_submit():
        return _render_page(campaign, status=422, import_form=form)
    data = form.file.data.stream.read(shipments.IMPORT_MAX_BYTES + 1)
    try:
        result = shipments.import_csv(campaign, current_user, data, apply=bool(form.apply.data))
    except shipments.ShipmentError as error:
        form.file.errors = [*form.file.errors, str(error)]
        return _render_page(campaign, status=422, import_form=form)
    if result.errors:
        return _render_page(campaign, status=422, import_form=form, result=result)
    if result.applied:
        flash(_("%(count)d items marked shipped. Their backers were told by mail.", count=len(result.changes)), "success")
        return redirect(url_for("fulfillment.page", slug=campaign.slug))
    return _render_page(campaign, import_form=form, result=result)


@bp.route("/campaigns/<slug>/fulfillment.csv")
@login_required
def export(slug: str):
    """The shipping list for a fulfilment service, with addresses and answers (the creator's; an audit row)."""
    campaign = _campaign(slug, write=True)
    text = shipments.export_csv(campaign, current_user)
    return Response(text, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{campaign.slug}-shipping.csv"', "Cache-Control": "private, no-store"})


def _item_or_404(pledge_id: int, item: str):
    return shipments.get_item(pledge_id, item) or abort(404)


def _creator_or_refuse(found) -> None:
    """The campaign's creator acts; a moderator who may read is refused (403); anyone else: 404."""
    campaign = found.pledge.campaign
    if campaigns.is_creator(campaign, current_user):
        return
    abort(403 if current_user.is_moderator else 404)


def _backer_or_404(found) -> None:
    if found.pledge.backer_id != current_user.id:
        abort(404)


@bp.route("/pledges/<id:pledge_id>/items/<item>/ship", methods=["POST"])
@login_required
def ship(pledge_id: int, item: str):
    """The creator marks one item shipped (carrier, tracking, date); its backer is mailed."""
    found = _item_or_404(pledge_id, item)
    _creator_or_refuse(found)
    campaign = found.pledge.campaign
    form = ShipForm()
    if form.validate_on_submit():
        try:
            shipments.ship(found, current_user, form.carrier.data, form.tracking.data, form.shipped_on.data)
        except shipments.ShipmentError as error:
            if not form.show_error(error):
                flash(str(error), "danger")
                return redirect(url_for("fulfillment.page", slug=campaign.slug))
        else:
            flash(_("Marked shipped: %(item)s of pledge %(id)d. The backer was told by mail.",
                    item=shipments.item_name(found), id=found.pledge_id), "success")
            return redirect(url_for("fulfillment.page", slug=campaign.slug, _anchor=f"item-{found.id}"))
    return _render_page(campaign, status=422, ship_form=form, ship_item_id=found.id)


def _to_pledge(found):
    return redirect(url_for("pledges.show", pledge_id=found.pledge_id, _anchor=f"item-{found.item}"))


@bp.route("/pledges/<id:pledge_id>/items/<item>/delivered", methods=["POST"])
@login_required
def delivered(pledge_id: int, item: str):
    """The backer says the item arrived."""
    found = _item_or_404(pledge_id, item)
    _backer_or_404(found)
    if DeliveredForm().validate_on_submit():
        try:
            shipments.mark_delivered(found, current_user)
        except shipments.ShipmentError as error:
            flash(str(error), "danger")
        else:
            flash(_("Thank you! %(item)s is marked as received.", item=shipments.item_name(found)), "success")
    return _to_pledge(found)


def _render_item(found, form, status: int):
    """The form of one item on a page of its own, with what was typed and the errors next to the fields."""
    return render_template("fulfillment/item.html", item=found, pledge=found.pledge, campaign=found.pledge.campaign,
                           form=form, thread=shipments.threads([found]).get(found.id, [])), status


@bp.route("/pledges/<id:pledge_id>/items/<item>/problem", methods=["POST"])
@login_required
def problem(pledge_id: int, item: str):
    """The backer reports a problem (lost, damaged, wrong item): a thread with the creator opens."""
    found = _item_or_404(pledge_id, item)
    _backer_or_404(found)
    form = ProblemForm()
    if form.validate_on_submit():
        try:
            shipments.report_problem(found, current_user, form.kind.data, form.body.data)
        except shipments.ShipmentError as error:
            if not form.show_error(error):
                flash(str(error), "danger")
                return _to_pledge(found)
        else:
            flash(_("Your report was sent to the creator. Their answer will appear here."), "success")
            return _to_pledge(found)
    return _render_item(found, form, 422)


@bp.route("/pledges/<id:pledge_id>/items/<item>/messages", methods=["POST"])
@login_required
def message(pledge_id: int, item: str):
    """A message in an item's problem thread, by its backer or the campaign's creator."""
    found = _item_or_404(pledge_id, item)
    by_backer = found.pledge.backer_id == current_user.id
    if not by_backer:
        _creator_or_refuse(found)
    form = MessageForm()
    if form.validate_on_submit():
        try:
            shipments.reply(found, current_user, form.body.data)
        except shipments.ShipmentError as error:
            if not form.show_error(error):
                flash(str(error), "danger")
        else:
            flash(_("Message sent."), "success")
            if by_backer:
                return _to_pledge(found)
            return redirect(url_for("fulfillment.page", slug=found.pledge.campaign.slug, _anchor=f"thread-{found.id}"))
    return _render_item(found, form, 422)

