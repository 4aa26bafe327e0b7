"""Routes for updates, comments, FAQ and questions. Thin views: forms check input, services decide."""
from __future__ import annotations

import click
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.caching import public_page
from app.campaigns.lookups import own_or_403, visible_or_404
from app.community import bp, follows, services
from app.community.forms import AnswerForm, AskForm, CommentForm, FaqForm, HideCommentForm, MoveForm, SaveForm, UpdateForm
from app.content.markdown import plain_excerpt, render_markdown
from app.extensions import limiter
from app.ids import parse_id

bp.add_app_template_global(services.campaign_section, "community_section")
bp.add_app_template_global(services.page_viewer, "page_viewer")
bp.add_app_template_global(render_markdown, "render_markdown")
bp.add_app_template_global(services.can_tag_delivery, "can_tag_delivery")
bp.add_app_template_global(services.delivery_news, "delivery_news")
bp.add_app_template_global(follows.saved_campaigns, "saved_campaigns")


def _comment_limit() -> str:
    return current_app.config["COMMENT_RATE_LIMIT"]


def _per_member() -> str:
    """Rate limits count per member (these routes need a login), else per address."""
    if current_user.is_authenticated:
        return f"member:{current_user.id}"
    return request.remote_addr or "unknown"


def _page_number() -> int:
    text = request.args.get("page", "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        return 1
    return max(1, int(text))


def _back_to(campaign, anchor: str) -> str:
    return url_for("campaigns.show", slug=campaign.slug) + "#" + anchor


# --- updates ---------------------------------------------------------------------------------

@bp.route("/campaigns/<slug>/updates")
@public_page
def updates(slug: str):
    campaign = visible_or_404(slug)
    page = _page_number()
    items, total = services.list_updates(campaign, page)
    readable = services.can_read_backer_content(campaign, current_user)
    return render_template("community/updates.html", campaign=campaign, items=items, total=total, page=page,
                           per_page=services.UPDATES_PER_PAGE, readable=readable,
                           excerpts={u.id: plain_excerpt(u.body, 240) for u in items if readable or not u.backers_only})


@bp.route("/campaigns/<slug>/updates/<id:update_id>")
@public_page
def update(slug: str, update_id: int):
    campaign = visible_or_404(slug)
    item = services.get_update(campaign, update_id) or abort(404)
    readable = not item.backers_only or services.can_read_backer_content(campaign, current_user)
    return render_template("community/update.html", campaign=campaign, item=item, readable=readable,
                           body_html=render_markdown(item.body) if readable else None,
                           is_creator=services.is_creator(campaign, current_user))


@bp.route("/campaigns/<slug>/updates/new", methods=["GET", "POST"])
@login_required
def new_update(slug: str):
    campaign = own_or_403(slug)
    if not services.is_open(campaign):
        flash(_("Updates can be posted once the campaign is live, and after it ends."), "warning")
        return redirect(url_for("campaigns.show", slug=slug))
    form = UpdateForm()
    if form.validate_on_submit():
        try:
            item = services.post_update(campaign, current_user, form.title.data, form.body.data, form.backers_only.data,
                                        form.delivery_news.data)
        except services.CommunityError as error:
            flash(str(error), "danger")
            return redirect(url_for("campaigns.show", slug=slug))
        flash(_("Update posted. Backers will get it by email shortly."), "success")
        return redirect(url_for("community.update", slug=slug, update_id=item.id))
    return render_template("community/update_form.html", campaign=campaign, form=form, item=None), 422 if form.errors else 200


@bp.route("/campaigns/<slug>/updates/<id:update_id>/edit", methods=["GET", "POST"])
@login_required
def edit_update(slug: str, update_id: int):
    campaign = own_or_403(slug)
    item = services.get_update(campaign, update_id) or abort(404)
    form = UpdateForm(obj=item) if request.method == "GET" else UpdateForm()
    if form.validate_on_submit():
        services.edit_update(campaign, item, current_user, form.title.data, form.body.data, form.backers_only.data,
                             form.delivery_news.data)
        flash(_("Update saved."), "success")
        return redirect(url_for("community.update", slug=slug, update_id=item.id))
    return render_template("community/update_form.html", campaign=campaign, form=form, item=item), 422 if form.errors else 200


# --- comments --------------------------------------------------------------------------------

def _before() -> int | None:
    return parse_id(request.args.get("before", "").strip())


@bp.route("/campaigns/<slug>/comments")
@public_page
def comments(slug: str):
    campaign = visible_or_404(slug)
    listing = services.comment_threads(campaign, _before())
    section = services.Section(is_creator=services.is_creator(campaign, current_user),
                               is_moderator=services.is_moderator(current_user))
    section.can_comment = services.can_comment(campaign, current_user)
    return render_template("community/comments.html", campaign=campaign, listing=listing, section=section,
                           form=CommentForm() if section.can_comment else None)


@bp.route("/campaigns/<slug>/comments", methods=["POST"])
@login_required
@limiter.limit(_comment_limit, key_func=_per_member, methods=["POST"])
def comment(slug: str):
    campaign = visible_or_404(slug)
    if not services.can_comment(campaign, current_user):
        if services.is_open(campaign):
            abort(403)
        flash(_("Comments open once the campaign is live."), "warning")
        return redirect(url_for("campaigns.show", slug=slug))
    form = CommentForm()
    if form.validate_on_submit():
        parent = None
        if form.parent_id.data is not None:
            parent = services.get_comment(campaign, form.parent_id.data) or abort(404)
        new = services.add_comment(campaign, current_user, form.body.data, parent)
        flash(_("Comment posted."), "success")
        return redirect(_back_to(campaign, f"comment-{new.id}"))
    listing = services.comment_threads(campaign, _before())
    if form.parent_id.data not in {thread.comment.id for thread in listing.threads}:
        form.parent_id.data = None  # show what was typed in the new-comment form, since its thread is not on this page
    section = services.Section(is_creator=services.is_creator(campaign, current_user),
                               is_moderator=services.is_moderator(current_user), can_comment=True)
    return render_template("community/comments.html", campaign=campaign, listing=listing, section=section, form=form), 422


def _comment_of(campaign, comment_id: int):
    return services.get_comment(campaign, comment_id) or abort(404)


@bp.route("/campaigns/<slug>/comments/<id:comment_id>/delete", methods=["POST"])
@login_required
def delete_comment(slug: str, comment_id: int):
    campaign = visible_or_404(slug)
    target = _comment_of(campaign, comment_id)
    try:
        services.delete_comment(campaign, target, current_user)
    except services.Forbidden:
        abort(403)
    flash(_("Comment deleted."), "success")
    return redirect(_back_to(campaign, f"comment-{target.id}"))


@bp.route("/campaigns/<slug>/comments/<id:comment_id>/hide", methods=["GET", "POST"])
@login_required
def hide_comment(slug: str, comment_id: int):
    campaign = visible_or_404(slug)
    if not services.is_moderator(current_user):
        abort(403)
    target = _comment_of(campaign, comment_id)
    form = HideCommentForm()
    if form.validate_on_submit():
        services.hide_comment(campaign, target, current_user, form.note.data)
        flash(_("Comment hidden."), "success")
        return redirect(_back_to(campaign, f"comment-{target.id}"))
    return render_template("community/hide_comment.html", campaign=campaign, comment=target, form=form), 422 if form.errors else 200


# --- FAQ -------------------------------------------------------------------------------------

@bp.route("/campaigns/<slug>/faq/new", methods=["GET", "POST"])
@login_required
def new_faq(slug: str):
    campaign = own_or_403(slug)
    form = FaqForm()
    if form.validate_on_submit():
        services.add_faq(campaign, current_user, form.question.data, form.answer.data)
        flash(_("Question added to the FAQ."), "success")
        return redirect(_back_to(campaign, "faq"))
    return render_template("community/faq_form.html", campaign=campaign, form=form, entry=None), 422 if form.errors else 200


@bp.route("/campaigns/<slug>/faq/<id:entry_id>/edit", methods=["GET", "POST"])
@login_required
def edit_faq(slug: str, entry_id: int):
    campaign = own_or_403(slug)
    entry = services.get_faq(campaign, entry_id) or abort(404)
    form = FaqForm(obj=entry) if request.method == "GET" else FaqForm()
    if form.validate_on_submit():
        services.edit_faq(campaign, entry, current_user, form.question.data, form.answer.data)
        flash(_("FAQ entry saved."), "success")
        return redirect(_back_to(campaign, "faq"))
    return render_template("community/faq_form.html", campaign=campaign, form=form, entry=entry), 422 if form.errors else 200


@bp.route("/campaigns/<slug>/faq/<id:entry_id>/delete", methods=["POST"])
@login_required
def delete_faq(slug: str, entry_id: int):
    campaign = own_or_403(slug)
    entry = services.get_faq(campaign, entry_id) or abort(404)
    services.delete_faq(campaign, entry, current_user)
    flash(_("FAQ entry deleted."), "success")
    return redirect(_back_to(campaign, "faq"))


@bp.route("/campaigns/<slug>/faq/<id:entry_id>/move", methods=["POST"])
@login_required
def move_faq(slug: str, entry_id: int):
    campaign = own_or_403(slug)
    entry = services.get_faq(campaign, entry_id) or abort(404)
    form = MoveForm()
    if not form.validate_on_submit():
        abort(400)
    services.move_faq(campaign, entry, current_user, form.direction.data)
    return redirect(_back_to(campaign, "faq"))


# --- backers' questions ----------------------------------------------------------------------

@bp.route("/campaigns/<slug>/ask", methods=["GET", "POST"])
@login_required
@limiter.limit(_comment_limit, key_func=_per_member, methods=["POST"])
def ask(slug: str):
    campaign = visible_or_404(slug)
    if not services.can_ask(campaign, current_user):
        abort(403)
    form = AskForm()
    if form.validate_on_submit():
        services.ask(campaign, current_user, form.body.data)
        flash(_("Your question was sent to the creator. You will get the answer by email."), "success")
        return redirect(_back_to(campaign, "faq"))
    return render_template("community/ask.html", campaign=campaign, form=form), 422 if form.errors else 200


@bp.route("/campaigns/<slug>/questions")
@login_required
def questions(slug: str):
    campaign = own_or_403(slug)
    page = _page_number()
    items, total = services.list_questions(campaign, page)
    return render_template("community/questions.html", campaign=campaign, items=items, total=total, page=page,
                           per_page=services.QUESTIONS_PER_PAGE)


@bp.route("/campaigns/<slug>/questions/<id:question_id>/answer", methods=["GET", "POST"])
@login_required
def answer(slug: str, question_id: int):
    campaign = own_or_403(slug)
    question = services.get_question(campaign, question_id) or abort(404)
    form = AnswerForm()
    if request.method == "GET":
        form.faq_question.data = question.body[:300].replace("\n", " ")
        if question.answer:
            form.answer.data = question.answer
    if form.validate_on_submit():
        try:
            services.answer_question(campaign, question, current_user, form.answer.data, reply=form.reply.data,
                                     publish=form.publish.data, faq_question=form.faq_question.data or "")
        except services.CommunityError as error:
            form.reply.errors = [*form.reply.errors, str(error)]
        else:
            flash(_("Answer sent.") if not form.publish.data else _("Answer saved and published in the FAQ."), "success")
            return redirect(url_for("community.questions", slug=slug))
    return render_template("community/answer.html", campaign=campaign, question=question, form=form), 422 if form.errors else 200


# --- saved campaigns ------------------------------------------------------------------------

def _after_save(campaign, form: SaveForm) -> str:
    """Back to the page the button was on: the campaign, or the list of saved campaigns (no other target)."""
    if form.back.data == "saved":
        return url_for("pledges.mine") + "#saved"
    return url_for("campaigns.show", slug=campaign.slug) + "#save"


@bp.route("/campaigns/<slug>/save", methods=["POST"])
@login_required
def follow(slug: str):
    campaign = visible_or_404(slug)
    form = SaveForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        follows.follow(campaign, current_user)
    except services.Forbidden:
        abort(403)
    except services.CommunityError as error:
        flash(str(error), "warning")
    else:
        flash(_("Saved. We will email you 48 hours before the campaign ends."), "success")
    return redirect(_after_save(campaign, form))


@bp.route("/campaigns/<slug>/unsave", methods=["POST"])
@login_required
def unfollow(slug: str):
    campaign = visible_or_404(slug)
    form = SaveForm()
    if not form.validate_on_submit():
        abort(400)
    if follows.unfollow(campaign, current_user):
        flash(_("Removed from your saved campaigns."), "success")
    return redirect(_after_save(campaign, form))


# --- the job ---------------------------------------------------------------------------------

@bp.cli.command("fan-out")
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, help="Backers per batch (one commit each).")
def fan_out_command(batch: int) -> None:
    """Queue the mail of posted updates to their backers (the worker does this on every pass)."""
    click.echo(f"{services.fan_out_updates(batch=batch)} update emails queued")


@bp.cli.command("remind")
def remind_command() -> None:
    """Queue the reminders of saved campaigns ending within 48 hours (the worker does this on every pass)."""
    click.echo(f"{follows.remind_due()} reminders queued")
