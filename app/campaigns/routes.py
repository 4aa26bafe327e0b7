"""Campaign pages: creators' drafts and tiers, transitions, public pages and discovery. Thin views."""
from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, send_from_directory, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app import caching, clock
from app.caching import public_page
from app.campaigns import bp, services, sharing, shipping, totals
from app.campaigns.forms import (
    STORY_MAX,
    AddonForm,
    CampaignForm,
    MarkdownPreviewForm,
    StoryImageForm,
    TierForm,
    category_choices,
    category_names,
)
from app.campaigns.lookups import own_or_403, public_facts, visible_or_404
from app.campaigns.models import CATEGORIES, CampaignState
from app.community.services import page_viewer
from app.content import images
from app.content.markdown import render_markdown
from app.extensions import limiter

#: The editor's preview asks after each pause in typing (debounced): generous, but bounded.
PREVIEW_RATE_LIMIT = "120 per minute"
#: Each story picture is decoded and re-encoded: a few a minute is what a person does.
STORY_IMAGE_RATE_LIMIT = "20 per minute"


def _per_member() -> str:
    """Rate limits count per member (these routes need a login)."""
    return f"member:{current_user.id}" if current_user.is_authenticated else (request.remote_addr or "unknown")


def _save_cover(form: CampaignForm) -> tuple[bool, str | None]:
    """Check and store an uploaded cover; (ok, filename or None when nothing was sent)."""
    upload = form.cover.data
    if not upload or not getattr(upload, "filename", ""):
        return True, None
    try:
        processed = images.process_cover(upload)
    except images.ImageError as error:
        form.cover.errors = [*form.cover.errors, str(error)]
        return False, None
    return True, images.save_cover(processed, services.cover_folder())


def _story_preview(form: CampaignForm):
    """The editor's preview pane as the page loads: the story as last sent (what the page would show)."""
    text = form.story.data or ""
    return render_markdown(text) if len(text) <= STORY_MAX else ""


def _form_page(form: CampaignForm, campaign=None, **extra):
    """The campaign form, with its errors (422) or as asked for."""
    return render_template("campaigns/form.html", form=form, campaign=campaign, story_preview=_story_preview(form),
                           **extra), 422 if form.errors else 200


class _Markdown:
    """Creator-written Markdown, rendered only when the page outputs it (not when the part of the
    page that shows it comes from the fragment cache)."""

    def __init__(self, text: str | None) -> None:
        self.text = text

    def __html__(self) -> str:
        return render_markdown(self.text)


def _page_context(campaign, preview: bool = False) -> dict:
    now = clock.utcnow()
    return {
        "campaign": campaign,
        "totals": totals.of(campaign),
        "story_html": _Markdown(campaign.story),
        "risks_html": _Markdown(campaign.risks),
        "now": now,
        "time_left": services.time_left(campaign, now),
        "preview": preview,
        "state_label": services.state_label(campaign.state) if preview else "",  # the preview banner's alone
    }


bp.add_app_template_global(services.load_offer, "load_offer")
bp.add_app_template_global(services.state_name, "campaign_state_name")
bp.add_app_template_global(sharing.campaign_url, "campaign_url")
bp.add_app_template_global(sharing.cover_url, "campaign_cover_url")
bp.add_app_template_global(sharing.email_link, "share_email_link")
bp.add_app_template_global(sharing.network_links, "share_links")


@bp.app_context_processor
def _names():
    return {
        "state_names": services.state_names(),
        "category_names": category_names(),
        "now": clock.utcnow(),
        "shipping_places": shipping.places,
        "shipping_costs": shipping.cost_summary,
        "shipping_rows": shipping.by_name,
        "country_name": shipping.country_name,
        "names_list": shipping.names_list,
        "launch_missing": services.missing_for_launch,
    }


# --- public ----------------------------------------------------------------------------------

def _page_number(text: str) -> int:
    """A page number from the query string; anything else ("abc", "²", 30 digits) is page 1."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        return 1
    return max(1, int(text))


@bp.route("/campaigns")
@public_page
def browse():
    listing = services.browse(
        q=request.args.get("q", ""),
        category=request.args.get("category", "") if request.args.get("category") in CATEGORIES else "",
        sort=request.args.get("sort", "ending"),
        page=_page_number(request.args.get("page", "")),
        show=request.args.get("show", "live"),
    )
    return render_template(
        "campaigns/browse.html", listing=listing, categories=category_choices(), sorts=services.SORTS, shows=services.SHOWS,
        q=request.args.get("q", "").replace("\x00", "")[:100], category=request.args.get("category", ""), sort=request.args.get("sort", "ending"),
        show=request.args.get("show", "live") if request.args.get("show") in services.SHOWS else "live",
    )


@bp.route("/campaigns/<slug>")
@public_page
def show(slug: str):
    if current_user.is_authenticated and caching.enabled():
        # A member's page of a public campaign: the shell shared by members of their role, their own parts
        # filled in; the campaign itself is read only when the shell is made.
        facts = public_facts(slug)
        if facts:
            viewer = page_viewer(facts, current_user)
            return caching.shell_page((viewer.role,), lambda: _show(slug, viewer=viewer),
                                      campaign=facts, viewer=viewer, open_for_pledges=facts.is_open_for_pledges(clock.utcnow()))
    return _show(slug)


def _show(slug: str, **context):
    campaign = visible_or_404(slug)  # the offer only when its part of the page is rendered (load_offer)
    if not campaign.is_public:
        return redirect(url_for("campaigns.preview", slug=slug))
    return render_template("campaigns/show.html", **_page_context(campaign), **context)


@bp.route("/campaigns/<slug>/preview")
@login_required
def preview(slug: str):
    campaign = visible_or_404(slug, offer=True)
    if not services.can_preview(campaign, current_user):
        return redirect(url_for("campaigns.show", slug=slug))
    return render_template("campaigns/show.html", **_page_context(campaign, preview=True))


@bp.route("/uploads/covers/<name>")
def cover(name: str):
    if not images.is_cover_name(name):
        abort(404)
    response = send_from_directory(services.cover_folder(), name, mimetype=images.content_type_for(name), max_age=86400)
    response.headers["Content-Disposition"] = "inline"
    return response


@bp.route("/uploads/story/<name>")
def story_image(name: str):
    """A picture uploaded into a story: served as covers are (names save_cover made, our content type)."""
    if not images.is_cover_name(name) or ".thumb." in name:
        abort(404)
    response = send_from_directory(services.story_image_folder(), name, mimetype=images.content_type_for(name), max_age=86400)
    response.headers["Content-Disposition"] = "inline"
    return response


# --- creator ---------------------------------------------------------------------------------

@bp.route("/campaigns/new", methods=["GET", "POST"])
@login_required
def new():
    form = CampaignForm()
    if form.validate_on_submit():
        ok, cover = _save_cover(form)
        if ok:
            campaign = services.create_draft(current_user, form.to_input(), cover)
            flash(_("Draft saved. Add at least one funding tier, then submit it for review."), "success")
            return redirect(url_for("campaigns.edit", slug=campaign.slug))
    return _form_page(form)


@bp.route("/campaigns/preview-markdown", methods=["POST"])
@login_required
@limiter.limit(PREVIEW_RATE_LIMIT, key_func=_per_member)
def preview_markdown():
    """The story editor's live preview: the text rendered by render_markdown, exactly as the page will."""
    form = MarkdownPreviewForm()
    if not form.validate_on_submit():
        return jsonify(error=" ".join(str(e) for errors in form.errors.values() for e in errors)), 422
    return jsonify(html=str(render_markdown(form.text.data)))


@bp.route("/campaigns/<slug>/story-images", methods=["POST"])
@login_required
@limiter.limit(STORY_IMAGE_RATE_LIMIT, key_func=_per_member)
def upload_story_image(slug: str):
    """A picture for the story, checked and re-encoded as covers are; answers its URL for the editor."""
    campaign = own_or_403(slug)
    form = StoryImageForm()
    if not form.validate_on_submit():
        return jsonify(error=" ".join(str(e) for errors in form.errors.values() for e in errors)), 422
    try:
        name = services.save_story_image(campaign, current_user, form.image.data)
    except services.CampaignError as error:
        return jsonify(error=str(error)), 409
    except images.ImageError as error:
        return jsonify(error=str(error)), 422
    return jsonify(url=url_for("campaigns.story_image", name=name)), 201


@bp.route("/campaigns/<slug>/edit", methods=["GET", "POST"])
@login_required
def edit(slug: str):
    campaign = own_or_403(slug, offer=True)
    form = CampaignForm()
    editable = campaign.is_editable or campaign.status == CampaignState.LIVE
    if request.method == "GET":
        form.fill_from(campaign)
    elif not editable:
        flash(_("This campaign is %(state)s and cannot be edited now.", state=services.state_label(campaign.state)), "warning")
        return redirect(url_for("campaigns.edit", slug=slug))
    elif form.validate_on_submit():
        ok, cover = _save_cover(form)
        if ok:
            replaced = campaign.cover
            try:
                services.update_content(campaign, current_user, form.to_input(), cover)
            except services.CampaignError as error:
                getattr(form, error.field or "title").errors.append(str(error))
                services.discard_cover(cover)  # stored before the rules said no: nothing refers to it
            else:
                if cover:  # only now that the new one is committed: never lose the current picture
                    services.discard_cover(replaced)
                if request.form.get("and_submit"):  # "Save and submit": what was typed, then the review
                    try:
                        services.submit(campaign, current_user)
                    except services.CampaignError as error:
                        flash(_("Changes saved."), "success")
                        flash(str(error), "danger")
                    else:
                        flash(_("Saved and submitted for review. A moderator will look at it soon."), "success")
                    return redirect(url_for("campaigns.edit", slug=slug))
                flash(_("Changes saved."), "success")
                return redirect(url_for("campaigns.edit", slug=slug))
    return _form_page(form, campaign, editable=editable,
                      missing=services.missing_for_submit(campaign) if campaign.is_editable else [])


def _tiers_closed(campaign):
    """A redirect with the reason when the campaign's tiers cannot change now, else None."""
    try:
        services.require_tiers_open(campaign)
    except services.CampaignError as error:
        flash(str(error), "warning")
        return redirect(url_for("campaigns.edit", slug=campaign.slug))
    return None


def _offer_form(template: str, form, campaign, item, locked: dict[str, int]):
    """The tier or add-on form again: with its errors (422), or with one more destination row."""
    if form.add_destination.data:
        form.more_rows()
    return render_template(template, form=form, campaign=campaign, item=item, locked=locked), 422 if form.errors else 200


def _locked(campaign, item) -> dict[str, int]:
    """The destinations the form shows fixed: after launch they stay, and their cost can only fall."""
    if item is None or campaign.status != CampaignState.LIVE:
        return {}
    return {d.country: d.cost for d in item.destinations}


def _save_offer(form, save) -> bool:
    """Validate `form` and run `save` unless the button asked for one more row; a refusal goes next to its field."""
    if form.add_destination.data or not form.validate_on_submit():
        return False
    try:
        save()
    except services.CampaignError as error:
        if not form.show_error(error):  # a refusal about no field in particular: at the top of the form
            form.title.errors.append(str(error))
        return False
    return True


@bp.route("/campaigns/<slug>/tiers/new", methods=["GET", "POST"])
@login_required
def new_tier(slug: str):
    campaign = own_or_403(slug)
    if (refused := _tiers_closed(campaign)) is not None:
        return refused
    form = TierForm(currency=campaign.currency)
    if _save_offer(form, lambda: services.add_tier(campaign, current_user, form.to_input())):
        flash(_("Tier added."), "success")
        return redirect(url_for("campaigns.edit", slug=slug) + "#tiers")
    return _offer_form("campaigns/tier_form.html", form, campaign, None, {})


@bp.route("/campaigns/<slug>/tiers/<id:tier_id>/edit", methods=["GET", "POST"])
@login_required
def edit_tier(slug: str, tier_id: int):
    campaign = own_or_403(slug)
    tier = services.get_tier(campaign, tier_id) or abort(404)
    if (refused := _tiers_closed(campaign)) is not None:
        return refused
    form = TierForm(currency=campaign.currency, saved_delivery=tier.estimated_delivery)
    if request.method == "GET":
        form.fill_from(tier)
    elif _save_offer(form, lambda: services.update_tier(campaign, current_user, tier, form.to_input())):
        flash(_("Tier saved."), "success")
        return redirect(url_for("campaigns.edit", slug=slug) + "#tiers")
    return _offer_form("campaigns/tier_form.html", form, campaign, tier, _locked(campaign, tier))


@bp.route("/campaigns/<slug>/tiers/<id:tier_id>/delete", methods=["POST"])
@login_required
def delete_tier(slug: str, tier_id: int):
    campaign = own_or_403(slug)
    tier = services.get_tier(campaign, tier_id) or abort(404)
    try:
        services.delete_tier(campaign, current_user, tier)
    except services.CampaignError as error:
        flash(str(error), "danger")
    else:
        flash(_("Tier removed."), "success")
    return redirect(url_for("campaigns.edit", slug=slug) + "#tiers")


@bp.route("/campaigns/<slug>/addons/new", methods=["GET", "POST"])
@login_required
def new_addon(slug: str):
    campaign = own_or_403(slug)
    if (refused := _tiers_closed(campaign)) is not None:
        return refused
    form = AddonForm(currency=campaign.currency, tiers=campaign.tiers)
    if _save_offer(form, lambda: services.add_addon(campaign, current_user, form.to_input())):
        flash(_("Add-on added."), "success")
        return redirect(url_for("campaigns.edit", slug=slug) + "#addons")
    return _offer_form("campaigns/addon_form.html", form, campaign, None, {})


@bp.route("/campaigns/<slug>/addons/<id:addon_id>/edit", methods=["GET", "POST"])
@login_required
def edit_addon(slug: str, addon_id: int):
    campaign = own_or_403(slug)
    addon = services.get_addon(campaign, addon_id) or abort(404)
    if (refused := _tiers_closed(campaign)) is not None:
        return refused
    form = AddonForm(currency=campaign.currency, tiers=campaign.tiers)
    if request.method == "GET":
        form.fill_from(addon)
    elif _save_offer(form, lambda: services.update_addon(campaign, current_user, addon, form.to_input())):
        flash(_("Add-on saved."), "success")
        return redirect(url_for("campaigns.edit", slug=slug) + "#addons")
    return _offer_form("campaigns/addon_form.html", form, campaign, addon, _locked(campaign, addon))


@bp.route("/campaigns/<slug>/addons/<id:addon_id>/delete", methods=["POST"])
@login_required
def delete_addon(slug: str, addon_id: int):
    campaign = own_or_403(slug)
    addon = services.get_addon(campaign, addon_id) or abort(404)
    try:
        services.delete_addon(campaign, current_user, addon)
    except services.CampaignError as error:
        flash(str(error), "danger")
    else:
        flash(_("Add-on removed."), "success")
    return redirect(url_for("campaigns.edit", slug=slug) + "#addons")


def _creator_transition(slug: str, action, success: str, target: str = "campaigns.edit"):
    campaign = own_or_403(slug)
    try:
        action(campaign, current_user)
    except services.CampaignError as error:
        flash(str(error), "danger")
        return redirect(url_for("campaigns.edit", slug=slug))
    flash(success, "success")
    return redirect(url_for(target, slug=slug))


@bp.route("/campaigns/<slug>/submit", methods=["POST"])
@login_required
def submit(slug: str):
    return _creator_transition(slug, services.submit, _("Submitted for review. A moderator will look at it soon."))


@bp.route("/campaigns/<slug>/launch", methods=["POST"])
@login_required
def launch(slug: str):
    return _creator_transition(slug, services.launch, _("Your campaign is live!"), target="campaigns.show")


@bp.route("/campaigns/<slug>/cancel", methods=["POST"])
@login_required
def cancel(slug: str):
    return _creator_transition(slug, services.cancel, _("The campaign is canceled. No backer will be charged."), target="campaigns.show")


@bp.route("/me/campaigns")
@login_required
def mine():
    def render():
        campaigns = services.creator_campaigns(current_user)
        attention = services.needs_attention(campaigns)
        return render_template(
            "campaigns/mine.html", campaigns=campaigns, groups=services.dashboard_groups(campaigns, attention), attention=attention,
            totals=totals.for_campaigns(campaigns), state_label=services.state_label, missing=services.missing_for_submit,
        )

    key = services.dashboard_key(current_user) if caching.enabled() else None
    if key is None:
        return render()
    # The creator's alone, kept whole: the key names everything it shows of the campaigns.
    return caching.shell_page(key, render, versioned=False)
