"""Pledge pages: the pledge form with the card, the backer's pledge and dashboard. Thin views."""
from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app import caching, clock, money
from app.campaigns.lookups import public_facts, visible_or_404
from app.campaigns.services import get_by_slug
from app.extensions import limiter
from app.payments import declines, gateway
from app.pledges import bp, services
from app.pledges.forms import ConfirmForm, PledgeForm
from app.pledges.models import PledgeState

bp.add_app_template_global(declines.for_script, "decline_messages")
bp.add_app_template_global(services.breakdown, "pledge_lines")


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _own_pledge_or_404(pledge_id: int):
    return services.get_for_backer(pledge_id, current_user) or abort(404)


def _payment_context(**extra) -> dict:
    return {"stripe_js_url": gateway.stripe_js_url(), "publishable_key": gateway.publishable_key(), "test_mode": True, **extra}


def _form_page(template: str, form: PledgeForm, **context) -> str:
    """The pledge form (new or edit). Its composition reads the offer (destinations, add-ons) and adds
    it up for the summary (`pledge_offer(campaign)`) only when it is rendered, not when it comes from the cache."""
    return render_template(template, form=form, pledge_offer=services.offer_for_script, shipping_offered=services.ships_anything,
                           **_payment_context(**context))


def _form_error_response(form: PledgeForm, template: str, **context):
    if _wants_json():
        return jsonify(errors={name: [str(e) for e in errors] for name, errors in form.errors.items()}), 422
    return _form_page(template, form, **context), 422


def _refused(error, form: PledgeForm, template: str, **context):
    if not form.show_error(error):
        form.form_errors.append(str(error))
        if _wants_json():
            return jsonify(errors={"_": [str(error)]}), 422
    return _form_error_response(form, template, **context)


@bp.route("/campaigns/<slug>/pledge", methods=["GET", "POST"])
@login_required
@limiter.limit("30 per minute", methods=["POST"])
def create(slug: str):
    """The pledge form. A POST (from the page's script) starts the card setup and answers with its secret."""
    if request.method == "GET" and caching.enabled():
        facts = public_facts(slug)
        if facts and services.may_start(facts, current_user):
            # The form is the same for every such member (their name and CSRF token aside): one shell per
            # address, language and zone.
            return caching.shell_page((), lambda: _create(slug))
    return _create(slug)


def _create(slug: str):
    campaign = visible_or_404(slug, offer=request.method == "POST")  # a GET's offer: only if not cached
    existing = services.open_pledge(campaign, current_user)
    if request.method == "GET" and existing is not None and existing.state != PledgeState.PENDING.value:
        flash(_("You already back this campaign. You can change your pledge here."), "info")
        return redirect(url_for("pledges.show", pledge_id=existing.id))
    form = PledgeForm(campaign=campaign)
    context = {"campaign": campaign, "confirm_form": ConfirmForm()}
    if request.method == "GET":
        tier = request.args.get("tier", "")
        form.tier.data = tier if tier in {str(t.id) for t in campaign.tiers} else ""
        if not form.tier.data:
            form.amount.data = money.to_input(money.MIN_CHARGE[campaign.currency], campaign.currency)
    try:
        services.check_backer(campaign, current_user)
    except services.PledgeError as error:
        if request.method == "POST":
            return _refused(error, form, "pledges/form.html", **context)
        flash(str(error), "warning")
        return redirect(url_for("campaigns.show", slug=slug))
    if request.method == "POST":
        if not form.validate_on_submit():
            return _form_error_response(form, "pledges/form.html", **context)
        try:
            services.compose(campaign, form.choice)
        except services.PledgeError as error:
            return _refused(error, form, "pledges/form.html", **context)
        if not _wants_json():  # the card can only be entered through Stripe.js: nothing is started without it
            form.form_errors.append(_("Your browser must run JavaScript to enter a card safely with Stripe."))
            return _form_error_response(form, "pledges/form.html", **context)
        try:
            pledge, client_secret = services.begin(campaign, current_user, form.choice)
        except services.PledgeError as error:
            return _refused(error, form, "pledges/form.html", **context)
        except gateway.GatewayError as error:
            form.form_errors.append(error.message)
            return _form_error_response(form, "pledges/form.html", **context)
        return jsonify(client_secret=client_secret, confirm_url=url_for("pledges.confirm", pledge_id=pledge.id))
    return _form_page("pledges/form.html", form, **context)


@bp.route("/pledges/<id:pledge_id>/confirm", methods=["POST"])
@login_required
def confirm(pledge_id: int):
    """After Stripe.js confirmed the card: read the setup back from Stripe and activate the pledge."""
    pledge = _own_pledge_or_404(pledge_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.activate(pledge, current_user, form.setup_intent.data)
    except services.PledgeError as error:
        flash(str(error), "danger")
        return redirect(url_for("pledges.create", slug=pledge.campaign.slug, tier=pledge.tier_id or ""))
    flash(_("Thank you! Your pledge is in. You will be charged only if the campaign reaches its goal."), "success")
    return redirect(url_for("pledges.show", pledge_id=pledge.id))


@bp.route("/pledges/<id:pledge_id>")
@login_required
def show(pledge_id: int):
    pledge = _own_pledge_or_404(pledge_id)
    return render_template(
        "pledges/show.html", pledge=pledge, campaign=pledge.campaign, state_name=services.state_name,
        open=pledge.campaign.is_open_for_pledges(clock.utcnow()), confirm_form=ConfirmForm(), **_payment_context(),
    )


@bp.route("/pledges/<id:pledge_id>/edit", methods=["GET", "POST"])
@login_required
def edit(pledge_id: int):
    pledge = _own_pledge_or_404(pledge_id)
    campaign = get_by_slug(pledge.campaign.slug, offer=True)
    form = PledgeForm(campaign=campaign)
    if request.method == "GET":
        form.fill(services.Choice.of(pledge))
    elif form.validate_on_submit():
        try:
            services.edit(pledge, current_user, form.choice)
        except services.PledgeError as error:
            return _refused(error, form, "pledges/edit.html", campaign=campaign, pledge=pledge)
        flash(_("Your pledge is updated."), "success")
        return redirect(url_for("pledges.show", pledge_id=pledge.id))
    else:
        return _form_error_response(form, "pledges/edit.html", campaign=campaign, pledge=pledge)
    return _form_page("pledges/edit.html", form, campaign=campaign, pledge=pledge)


@bp.route("/pledges/<id:pledge_id>/card", methods=["POST"])
@login_required
def card(pledge_id: int):
    """Start replacing the card of an active pledge (answers the script with a setup secret)."""
    pledge = _own_pledge_or_404(pledge_id)
    try:
        client_secret = services.begin_card_change(pledge, current_user)
    except (services.PledgeError, gateway.GatewayError) as error:
        return jsonify(errors={"_": [getattr(error, "message", None) or str(error)]}), 422
    return jsonify(client_secret=client_secret, confirm_url=url_for("pledges.card_confirm", pledge_id=pledge.id))


@bp.route("/pledges/<id:pledge_id>/card/confirm", methods=["POST"])
@login_required
def card_confirm(pledge_id: int):
    pledge = _own_pledge_or_404(pledge_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.finish_card_change(pledge, current_user, form.setup_intent.data)
    except services.PledgeError as error:
        flash(str(error), "danger")
    else:
        flash(_("Your new card is saved for this pledge."), "success")
    return redirect(url_for("pledges.show", pledge_id=pledge.id))


@bp.route("/pledges/<id:pledge_id>/cancel", methods=["POST"])
@login_required
def cancel(pledge_id: int):
    pledge = _own_pledge_or_404(pledge_id)
    try:
        services.cancel(pledge, current_user)
    except services.PledgeError as error:
        flash(str(error), "danger")
    else:
        flash(_("Your pledge is canceled. You will not be charged."), "success")
    return redirect(url_for("pledges.show", pledge_id=pledge.id))


@bp.route("/me/pledges")
@login_required
def mine():
    pledges = services.BackerPledges(current_user)

    def render():
        return render_template("pledges/mine.html", pledges=pledges, state_name=services.state_name)

    if not pledges.keyed:
        return render()
    # The member's alone: the shell is keyed on them, the rows and their saved list's version (its box is in the shell).
    return caching.shell_page((current_user.id, current_user.saved_version, pledges.rows), render)
