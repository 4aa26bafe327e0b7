"""Fulfillment pages. Thin views: the rules are in `surveys` and `addresses`.

Sections: the delivery record's template globals; the backer survey (the creator's builder, the
backer's answers, the panel the pledge page shows); data rights; fulfillment (the creator's page, the
tracking import and shipping export, each item's actions, and what the pledge pages show of them).
"""
from __future__ import annotations

import json

from flask import Response, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, logout_user

from app import clock
from app.campaigns import services as campaigns
from app.campaigns import shipping
from app.campaigns.lookups import visible_or_404
from app.campaigns.models import CampaignState
from app.extensions import limiter
from app.fulfillment import addresses, bp, data_rights, delivery, shipments, surveys
from app.fulfillment.forms import (
    DeleteAccountForm,
    DeliveredForm,
    FilterForm,
    ImportForm,
    MessageForm,
    MoveQuestionForm,
    ProblemForm,
    QuestionForm,
    ShipForm,
    SurveyActionForm,
    answer_form,
)
from app.fulfillment.models import OPTIONS_MAX, OPTIONS_MIN, PROMPT_MAX, ItemState, SurveyState
from app.pledges import services as pledges
from app.pledges.models import PledgeState

# === the delivery record (campaign page and track record: floors below ask through these globals) ===

bp.add_app_template_global(delivery.campaign_delivery, "campaign_delivery")
bp.add_app_template_global(delivery.creator_delivery, "creator_delivery")


# === the backer survey ==============================================================================

# --- for the templates (the pledge page sits on a floor below: it asks through this global) ---------

def survey_panel(pledge) -> dict | None:
    """What the pledge page shows of the survey to the pledge's backer: the request (None: nothing
    was asked), the survey's state, and the address on file (read through `addresses.address_for`)."""
    if not getattr(current_user, "is_authenticated", False) or pledge.backer_id != current_user.id:
        return None
    request_row = surveys.request_of(pledge)
    address = addresses.address_for(pledge, current_user) if pledge.country else None
    if request_row is None and address is None:
        return None
    survey = request_row.survey if request_row is not None else surveys.survey_of(pledge.campaign)
    return {"request": request_row, "survey": survey, "address": address,
            "open": survey is not None and survey.state == SurveyState.SENT and pledge.state == PledgeState.COLLECTED,
            "address_spec": addresses.form_spec(address.country) if address is not None and not address.erased else None}


bp.add_app_template_global(survey_panel, "survey_panel")


# --- the creator's builder -------------------------------------------------------------------------

#: The limits the question form's help texts state (the service enforces them).
_LIMITS = {"prompt_max": PROMPT_MAX, "options_min": OPTIONS_MIN, "options_max": OPTIONS_MAX}


def _preview(campaign) -> dict:
    """The preview's choice (query string: `tier`, `addons`, `country`) and what such a backer is asked."""
    tiers = {str(tier.id): tier for tier in campaign.tiers}
    tier = tiers.get(request.args.get("tier", ""))
    if tier is None and "tier" not in request.args and campaign.tiers:
        tier = campaign.tiers[0]
    offered = {str(addon.id): addon for addon in campaign.addons}
    held = [offered[value] for value in request.args.getlist("addons") if value in offered]
    asked = surveys.preview(campaign, tier.id if tier else None, [addon.id for addon in held])
    country = (request.args.get("country") or "").upper()
    if not shipping.is_country(country):
        country = next((d.country for d in (tier.destinations if tier else []) if shipping.is_country(d.country)), "FR")
    spec = addresses.form_spec(country) if asked.needs_address else None
    form = answer_form(asked.questions, spec, formdata=None, meta={"csrf": False})
    return {"tier": tier, "addons": held, "country": country, "asked": asked, "form": form, "spec": spec}


def _builder_page(campaign, form: QuestionForm, status: int = 200):
    survey = surveys.survey_of(campaign)
    sent, answered = surveys.counts(survey)
    return render_template(
        "fulfillment/survey_builder.html", campaign=campaign, survey=survey, form=form, sent=sent, answered=answered,
        preview=_preview(campaign), countries=shipping.countries(), action=SurveyActionForm(), move=MoveQuestionForm(),
        **_LIMITS,
    ), status


def _refused(form: QuestionForm, error: surveys.SurveyError) -> None:
    if not form.show_error(error):
        form.form_errors.append(str(error))


@bp.route("/campaigns/<slug>/survey", methods=["GET", "POST"])
@login_required
def survey(slug: str):
    """The creator's survey: its questions, a form to add one, the preview per tier, send and lock."""
    campaign = _campaign(slug, write=True, offer=True)
    form = QuestionForm(campaign=campaign)
    if form.validate_on_submit():
        try:
            surveys.add_question(campaign, current_user, form.to_input())
        except surveys.SurveyError as error:
            _refused(form, error)
        else:
            flash(_("The question is added to the survey."), "success")
            return redirect(url_for("fulfillment.survey", slug=slug) + "#questions")
    if request.method == "POST":
        return _builder_page(campaign, form, 422)
    return _builder_page(campaign, form)


def _survey_question(campaign, question_id: int):
    survey = surveys.survey_of(campaign)
    question = next((q for q in survey.questions if q.id == question_id), None) if survey is not None else None
    return survey, question or abort(404)


@bp.route("/campaigns/<slug>/survey/questions/<id:question_id>/edit", methods=["GET", "POST"])
@login_required
def edit_question(slug: str, question_id: int):
    campaign = _campaign(slug, write=True, offer=True)
    survey, question = _survey_question(campaign, question_id)
    if survey.state != SurveyState.DRAFT:
        flash(_("The survey was sent: its questions can no longer change."), "warning")
        return redirect(url_for("fulfillment.survey", slug=slug))
    form = QuestionForm(campaign=campaign)
    form.submit.label.text = _("Save the question")
    if request.method == "GET":
        form.fill_from(question)
    elif form.validate_on_submit():
        try:
            surveys.update_question(campaign, current_user, question.id, form.to_input())
        except surveys.SurveyError as error:
            _refused(form, error)
        else:
            flash(_("The question is saved."), "success")
            return redirect(url_for("fulfillment.survey", slug=slug) + "#questions")
    status = 422 if request.method == "POST" else 200
    return render_template("fulfillment/question_edit.html", campaign=campaign, question=question, form=form,
                           **_LIMITS), status


@bp.route("/campaigns/<slug>/survey/questions/<id:question_id>/remove", methods=["POST"])
@login_required
def remove_question(slug: str, question_id: int):
    campaign = _campaign(slug, write=True, offer=True)
    _survey, question = _survey_question(campaign, question_id)
    try:
        surveys.remove_question(campaign, current_user, question.id)
    except surveys.SurveyError as error:
        flash(str(error), "danger")
    else:
        flash(_("The question is removed."), "success")
    return redirect(url_for("fulfillment.survey", slug=slug) + "#questions")


@bp.route("/campaigns/<slug>/survey/questions/<id:question_id>/move", methods=["POST"])
@login_required
def move_question(slug: str, question_id: int):
    campaign = _campaign(slug, write=True, offer=True)
    survey, question = _survey_question(campaign, question_id)
    form = MoveQuestionForm()
    if not form.validate_on_submit():
        abort(400)
    position = survey.questions.index(question) + (-1 if form.direction.data == "up" else 1)
    try:
        surveys.move_question(campaign, current_user, question.id, max(position, 0))
    except surveys.SurveyError as error:
        flash(str(error), "danger")
    return redirect(url_for("fulfillment.survey", slug=slug) + "#questions")


@bp.route("/campaigns/<slug>/survey/send", methods=["POST"])
@login_required
def send_survey(slug: str):
    """Send the survey: every collected pledge gets its request and a mail."""
    campaign = _campaign(slug, write=True, offer=True)
    try:
        sent = surveys.send(campaign, current_user)
    except surveys.SurveyError as error:
        flash(str(error), "danger")
    else:
        flash(ngettext("The survey is sent to %(num)d backer.", "The survey is sent to %(num)d backers.", sent), "success")
    return redirect(url_for("fulfillment.survey", slug=slug))


@bp.route("/campaigns/<slug>/survey/lock", methods=["POST"])
@login_required
def lock_survey(slug: str):
    """Lock the answers: backers can no longer change them."""
    campaign = _campaign(slug, write=True, offer=True)
    try:
        surveys.lock(campaign, current_user)
    except surveys.SurveyError as error:
        flash(str(error), "danger")
    else:
        flash(_("The survey is locked: the answers are final."), "success")
    return redirect(url_for("fulfillment.survey", slug=slug))


# --- the backer's answers --------------------------------------------------------------------------

def _filled(pledge, asked) -> dict:
    """The form's starting values: the answers given and the address on file."""
    data: dict = {}
    for question_id, row in surveys.answers_of(pledge).items():
        data[f"q-{question_id}"] = row.value
    address = addresses.address_for(pledge, current_user) if asked.needs_address else None
    if address is not None and not address.erased:
        data.update({name: getattr(address, name) for name in addresses.FIELDS})
        data["phone"] = address.phone
    return data


@bp.route("/pledges/<id:pledge_id>/survey", methods=["GET", "POST"])
@login_required
def answer(pledge_id: int):
    """The backer answers the survey of their pledge (and gives the address when it ships)."""
    pledge = pledges.get_for_backer(pledge_id, current_user) or abort(404)
    request_row = surveys.request_of(pledge)
    if request_row is None or pledge.state != PledgeState.COLLECTED:
        abort(404)
    asked = surveys.questions_for(pledge)
    spec = addresses.form_spec(pledge.country) if asked.needs_address else None
    locked = asked.survey is None or asked.survey.state != SurveyState.SENT
    # Shown: what is on file; sent back: only what was typed (an option left unchosen is no answer).
    form = answer_form(asked.questions, spec, **({"data": _filled(pledge, asked)} if request.method == "GET" else {}))
    context = {"pledge": pledge, "campaign": pledge.campaign, "asked": asked, "spec": spec, "form": form,
               "locked": locked, "request_row": request_row, "answers": surveys.answers_of(pledge),
               "address": addresses.address_for(pledge, current_user) if asked.needs_address else None}
    if request.method == "GET":
        return render_template("fulfillment/survey_answer.html", **context)
    if not locked and form.validate_on_submit():
        try:
            surveys.answer(pledge, current_user, form.answers(), form.address())
        except surveys.SurveyError as error:
            form.show_errors(error.errors or {"": str(error)})
        else:
            flash(_("Thank you! Your answers are saved. You can change them until the creator locks the survey."), "success")
            return redirect(url_for("pledges.show", pledge_id=pledge.id))
    elif locked:
        form.form_errors.append(_("The survey is closed: answers can no longer change."))
    return render_template("fulfillment/survey_answer.html", **context), 422


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


# === fulfillment ===================================================================================


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


def _campaign(slug: str, *, write: bool, offer: bool = False):
    """The funded campaign at `slug` for its creator (moderators too when only reading): 404 when it
    is not visible or not funded, 403 for anyone else who can see it. The survey and fulfillment pages
    both find their campaign here; `offer` loads its tiers and add-ons with it."""
    campaign = visible_or_404(slug, offer=offer)
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
    form.country.choices = [("", _("All countries"))] + [(code, shipping.country_name(code)) for code in shipments.countries(campaign)]
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

