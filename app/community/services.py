"""Community rules: campaign updates (and their mail fan-out), comments, the FAQ and backers' questions.

Who may do what is decided here, never in a template or a route. Every write that changes what the
campaign page shows moves `campaigns.updated_at` (the public page cache's version, see app/caching.py).
Each action is one transaction: the service commits; routes commit nothing themselves.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, exists, func, literal, select, update
from sqlalchemy.orm import joinedload

from app import clock, database
from app.accounts.models import User
from app.campaigns.models import Campaign, CampaignState
from app.community.models import CampaignFollow, CampaignQuestion, CampaignUpdate, Comment, FaqEntry
from app.content.markdown import plain_excerpt
from app.extensions import db
from app.notifications.services import mail_batch, queue_mail
from app.pledges.models import HOLDING, Pledge, PledgeState

S = CampaignState

#: Pledges that make their backer a backer here: commenting, asking, reading backers-only updates, mail.
BACKER_STATES = (PledgeState.ACTIVE.value, PledgeState.COLLECTED.value)
#: Campaign states in which updates, comments and questions can be posted (live, or ended with an outcome).
OPEN_STATES = frozenset({S.LIVE, S.SUCCESSFUL, S.UNSUCCESSFUL})
#: Top-level comments per page; updates listed on the campaign page.
COMMENTS_PER_PAGE = 50
UPDATES_ON_PAGE = 10
UPDATES_PER_PAGE = 20
QUESTIONS_PER_PAGE = 50


class CommunityError(ValueError):
    """A refused action, with a message fit to show the person; `field` names a form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Forbidden(CommunityError):
    """The person may not do this at all (the route answers 403)."""


# --- who may do what -------------------------------------------------------------------------

def _member(user: User | None) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def is_creator(campaign: Campaign, user: User | None) -> bool:
    return _member(user) and user.id == campaign.creator_id


def is_moderator(user: User | None) -> bool:
    return _member(user) and bool(user.is_moderator)


def is_backer(campaign: Campaign, user: User | None) -> bool:
    """An active or collected pledge to this campaign."""
    if not _member(user):
        return False
    return bool(db.session.scalar(select(_backer_clause(campaign.id, user.id))))


def _backer_clause(campaign_id, user_id):
    """Whether the user backs the campaign (an active or collected pledge); ids or bound parameters."""
    return exists().where(Pledge.campaign_id == campaign_id, Pledge.backer_id == user_id, Pledge.state.in_(BACKER_STATES))


def is_open(campaign: Campaign) -> bool:
    return campaign.status in OPEN_STATES


def can_read_backer_content(campaign: Campaign, user: User | None, backer: bool | None = None) -> bool:
    """Backers-only updates: backers, the creator and moderators."""
    if is_creator(campaign, user) or is_moderator(user):
        return True
    return is_backer(campaign, user) if backer is None else backer


def can_comment(campaign: Campaign, user: User | None, backer: bool | None = None) -> bool:
    """The creator and backers, on a live or ended campaign."""
    if not is_open(campaign) or not _member(user):
        return False
    return is_creator(campaign, user) or (is_backer(campaign, user) if backer is None else backer)


def can_ask(campaign: Campaign, user: User | None, backer: bool | None = None) -> bool:
    """Backers (never the creator) may ask the creator a question."""
    if not is_open(campaign) or not _member(user) or is_creator(campaign, user):
        return False
    return is_backer(campaign, user) if backer is None else backer


def _require_creator(campaign: Campaign, actor: User) -> None:
    if not is_creator(campaign, actor):
        raise Forbidden(_("Only the campaign's creator can do this."))


def _require_open(campaign: Campaign) -> None:
    if not is_open(campaign):
        raise CommunityError(_("This is possible once the campaign is live, and after it ends."))


def touch(campaign_id: int) -> None:
    """Move the campaign's version: visitors' cached pages showing it are not served again."""
    db.session.execute(
        update(Campaign).where(Campaign.id == campaign_id).values(updated_at=clock.utcnow())
        .execution_options(synchronize_session=False)
    )


# --- updates ---------------------------------------------------------------------------------

def can_tag_delivery(campaign: Campaign) -> bool:
    return campaign.state == S.SUCCESSFUL.value


def delivery_news(campaign: Campaign, limit: int = 5) -> list[CampaignUpdate]:
    """The creator's latest updates tagged as delivery news, newest first (shown beside the delivery record)."""
    return list(db.session.scalars(
        select(CampaignUpdate)
        .where(CampaignUpdate.campaign_id == campaign.id, CampaignUpdate.delivery_news.is_(True))
        .order_by(CampaignUpdate.created_at.desc(), CampaignUpdate.id.desc()).limit(limit)
    ))

def post_update(campaign: Campaign, author: User, title: str, body: str, backers_only: bool,
                delivery_news: bool = False) -> CampaignUpdate:
    """The creator posts an update. Mail to backers is left to `fan_out_updates` (the worker). Only a
    successful campaign's update can be delivery news (there is nothing to deliver before)."""
    _require_creator(campaign, author)
    _require_open(campaign)
    item = CampaignUpdate(campaign_id=campaign.id, author_id=author.id, title=title, body=body,
                          backers_only=backers_only, delivery_news=delivery_news and can_tag_delivery(campaign),
                          created_at=clock.utcnow())
    db.session.add(item)
    touch(campaign.id)
    db.session.commit()
    return item


def edit_update(campaign: Campaign, item: CampaignUpdate, actor: User, title: str, body: str, backers_only: bool,
                delivery_news: bool = False) -> CampaignUpdate:
    """The creator corrects an update (mail already sent is not sent again)."""
    _require_creator(campaign, actor)
    item.title, item.body, item.backers_only = title, body, backers_only
    item.delivery_news = delivery_news and can_tag_delivery(campaign)
    item.edited_at = clock.utcnow()
    touch(campaign.id)
    db.session.commit()
    return item


def get_update(campaign: Campaign, update_id: int) -> CampaignUpdate | None:
    return db.session.scalar(select(CampaignUpdate).where(CampaignUpdate.id == update_id, CampaignUpdate.campaign_id == campaign.id))


def list_updates(campaign: Campaign, page: int = 1, per_page: int = UPDATES_PER_PAGE) -> tuple[list[CampaignUpdate], int]:
    """One page of updates, newest first, and how many there are."""
    total = db.session.scalar(select(func.count()).select_from(CampaignUpdate).where(CampaignUpdate.campaign_id == campaign.id)) or 0
    items = db.session.scalars(
        select(CampaignUpdate).where(CampaignUpdate.campaign_id == campaign.id)
        .order_by(CampaignUpdate.created_at.desc(), CampaignUpdate.id.desc())
        .offset((max(page, 1) - 1) * per_page).limit(per_page)
    ).all()
    return list(items), total


def fan_out_updates(batch: int = 500, max_batches: int | None = None) -> int:
    """The job: expand posted updates into outbox mail to their backers, `batch` at a time.

    Each batch is one transaction that queues its mail and moves the update's cursor past the pledges
    it covered, so a run killed at any point and run again queues every mail exactly once. On
    PostgreSQL the update is claimed with SKIP LOCKED, so several workers never share a batch.
    Returns how many mails were queued.
    """
    queued = batches = 0
    while max_batches is None or batches < max_batches:
        claim = select(CampaignUpdate).where(CampaignUpdate.fanned_out_at.is_(None)).order_by(CampaignUpdate.id).limit(1)
        if db.engine.dialect.name == "postgresql":
            claim = claim.with_for_update(skip_locked=True, of=CampaignUpdate)
        item = db.session.scalar(claim)
        if item is None:
            db.session.rollback()
            break
        try:
            queued += _fan_out_batch(item, batch)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        batches += 1
    return queued


def _fan_out_batch(item: CampaignUpdate, batch: int) -> int:
    """Queue the next `batch` backers' mail for one update and move its cursor (no commit)."""
    rows = db.session.execute(
        select(Pledge.id, User).join(User, User.id == Pledge.backer_id)
        .where(Pledge.campaign_id == item.campaign_id, Pledge.state.in_(BACKER_STATES),
               Pledge.id > item.fanout_after_pledge_id, User.email_updates.is_(True))
        .order_by(Pledge.id).limit(batch)
    ).all()
    campaign = db.session.get(Campaign, item.campaign_id)
    with mail_batch():
        for _pledge_id, backer in rows:
            queue_mail(backer, _l("Update from %(title)s: %(update)s", title=campaign.title, update=item.title),
                       "community_update", update=item, campaign=campaign, reader=backer)
    if rows:
        item.fanout_after_pledge_id = rows[-1][0]
    if len(rows) < batch:
        item.fanned_out_at = clock.utcnow()
    return len(rows)


# --- comments --------------------------------------------------------------------------------

def get_comment(campaign: Campaign, comment_id: int) -> Comment | None:
    return db.session.scalar(select(Comment).where(Comment.id == comment_id, Comment.campaign_id == campaign.id))


def add_comment(campaign: Campaign, author: User, body: str, parent: Comment | None = None) -> Comment:
    """A comment, or a reply; a reply to a reply joins the top-level comment's thread."""
    if not can_comment(campaign, author):
        if not is_open(campaign):
            _require_open(campaign)
        raise Forbidden(_("Only backers and the creator can comment on this campaign."))
    if parent is not None and parent.campaign_id != campaign.id:
        raise CommunityError(_("That comment is not on this campaign."))
    if parent is not None and parent.parent_id is not None:
        parent = db.session.get(Comment, parent.parent_id)
    comment = Comment(campaign_id=campaign.id, author_id=author.id, body=body, parent_id=parent.id if parent else None,
                      created_at=clock.utcnow())
    db.session.add(comment)
    db.session.flush()
    if parent is not None and parent.author_id != author.id and parent.deleted_at is None:
        parent_author = parent.author
        if parent_author.email_replies:
            queue_mail(parent_author, _l("%(name)s replied to your comment on %(title)s", name=author.display_name, title=campaign.title),
                       "comment_reply", campaign=campaign, reply=comment, parent=parent, author=author, reader=parent_author)
    touch(campaign.id)
    db.session.commit()
    return comment


def delete_comment(campaign: Campaign, comment: Comment, actor: User) -> None:
    """The author removes their comment; a placeholder keeps its replies readable."""
    if not _member(actor) or comment.author_id != actor.id:
        raise Forbidden(_("Only its author can delete a comment."))
    if comment.deleted_at is None:
        comment.deleted_at = clock.utcnow()
        touch(campaign.id)
    db.session.commit()


def hide_comment(campaign: Campaign, comment: Comment, moderator: User, note: str) -> None:
    """A moderator hides a comment, with a note its author sees."""
    if not is_moderator(moderator):
        raise Forbidden(_("Only moderators can hide comments."))
    comment.hidden_at = clock.utcnow()
    comment.hidden_by_id = moderator.id
    comment.hidden_note = note
    touch(campaign.id)
    db.session.commit()


@dataclass
class Thread:
    comment: Comment
    replies: list[Comment] = field(default_factory=list)


@dataclass
class CommentPage:
    threads: list[Thread]
    #: The `before` value of the next (older) page, or None on the last page.
    older: int | None


def comment_threads(campaign: Campaign, before: int | None = None, limit: int = COMMENTS_PER_PAGE) -> CommentPage:
    """Newest top-level comments (at most `limit`, older than id `before`) with their replies: two queries."""
    query = (select(Comment).options(joinedload(Comment.author))
             .where(Comment.campaign_id == campaign.id, Comment.parent_id.is_(None)))
    if before is not None:
        query = query.where(Comment.id < before)
    tops = list(db.session.scalars(query.order_by(Comment.id.desc()).limit(limit + 1)).all())
    older = None
    if len(tops) > limit:
        tops = tops[:limit]
        older = tops[-1].id
    threads = {c.id: Thread(c) for c in tops}
    if threads:
        for reply in db.session.scalars(
            select(Comment).options(joinedload(Comment.author))
            .where(Comment.campaign_id == campaign.id, Comment.parent_id.in_(list(threads))).order_by(Comment.id)
        ):
            threads[reply.parent_id].replies.append(reply)
    return CommentPage(list(threads.values()), older)


# --- FAQ -------------------------------------------------------------------------------------

def faq_entries(campaign: Campaign) -> list[FaqEntry]:
    return list(db.session.scalars(
        select(FaqEntry).where(FaqEntry.campaign_id == campaign.id).order_by(FaqEntry.position, FaqEntry.id)
    ).all())


def get_faq(campaign: Campaign, entry_id: int) -> FaqEntry | None:
    return db.session.scalar(select(FaqEntry).where(FaqEntry.id == entry_id, FaqEntry.campaign_id == campaign.id))


def _new_faq(campaign: Campaign, question: str, answer: str) -> FaqEntry:
    last = db.session.scalar(select(func.max(FaqEntry.position)).where(FaqEntry.campaign_id == campaign.id))
    now = clock.utcnow()
    entry = FaqEntry(campaign_id=campaign.id, question=question, answer=answer, position=(last or 0) + 1,
                     created_at=now, updated_at=now)
    db.session.add(entry)
    return entry


def add_faq(campaign: Campaign, actor: User, question: str, answer: str) -> FaqEntry:
    """The creator adds a question and its answer at the end of the FAQ."""
    _require_creator(campaign, actor)
    entry = _new_faq(campaign, question, answer)
    touch(campaign.id)
    db.session.commit()
    return entry


def edit_faq(campaign: Campaign, entry: FaqEntry, actor: User, question: str, answer: str) -> FaqEntry:
    _require_creator(campaign, actor)
    entry.question, entry.answer, entry.updated_at = question, answer, clock.utcnow()
    touch(campaign.id)
    db.session.commit()
    return entry


def delete_faq(campaign: Campaign, entry: FaqEntry, actor: User) -> None:
    _require_creator(campaign, actor)
    db.session.delete(entry)
    touch(campaign.id)
    db.session.commit()


def move_faq(campaign: Campaign, entry: FaqEntry, actor: User, direction: str) -> bool:
    """Swap an entry with its neighbour above ("up") or below ("down"); False when it is already at that end."""
    _require_creator(campaign, actor)
    entries = faq_entries(campaign)
    index = next(i for i, e in enumerate(entries) if e.id == entry.id)
    other = index - 1 if direction == "up" else index + 1
    if direction not in ("up", "down") or not 0 <= other < len(entries):
        db.session.rollback()
        return False
    entries[index], entries[other] = entries[other], entries[index]
    for position, item in enumerate(entries, start=1):  # renumber: also mends ties
        item.position = position
    touch(campaign.id)
    db.session.commit()
    return True


# --- backers' questions ----------------------------------------------------------------------

def ask(campaign: Campaign, asker: User, body: str) -> CampaignQuestion:
    """A backer asks the creator; the creator gets it by mail and on the campaign's questions page."""
    if not can_ask(campaign, asker):
        if not is_open(campaign):
            _require_open(campaign)
        raise Forbidden(_("Only backers of this campaign can ask its creator a question."))
    question = CampaignQuestion(campaign_id=campaign.id, asker_id=asker.id, body=body, created_at=clock.utcnow())
    db.session.add(question)
    db.session.flush()
    creator = campaign.creator
    queue_mail(creator, _l("A backer asked about %(title)s", title=campaign.title), "question_asked",
               campaign=campaign, question=question, asker=asker, reader=creator)
    db.session.commit()
    return question


def get_question(campaign: Campaign, question_id: int) -> CampaignQuestion | None:
    return db.session.scalar(select(CampaignQuestion).options(joinedload(CampaignQuestion.asker))
                             .where(CampaignQuestion.id == question_id, CampaignQuestion.campaign_id == campaign.id))


def list_questions(campaign: Campaign, page: int = 1, per_page: int = QUESTIONS_PER_PAGE) -> tuple[list[CampaignQuestion], int]:
    """The creator's inbox: unanswered first, then newest first."""
    total = db.session.scalar(select(func.count()).select_from(CampaignQuestion).where(CampaignQuestion.campaign_id == campaign.id)) or 0
    items = db.session.scalars(
        select(CampaignQuestion).options(joinedload(CampaignQuestion.asker))
        .where(CampaignQuestion.campaign_id == campaign.id)
        .order_by(CampaignQuestion.answered_at.is_not(None), CampaignQuestion.id.desc())
        .offset((max(page, 1) - 1) * per_page).limit(per_page)
    ).all()
    return list(items), total


def answer_question(campaign: Campaign, question: CampaignQuestion, actor: User, answer: str, *, reply: bool,
                    publish: bool, faq_question: str = "") -> FaqEntry | None:
    """The creator answers: privately by mail to the asker (`reply`), and/or as a new FAQ entry (`publish`)."""
    _require_creator(campaign, actor)
    if not reply and not publish:
        raise CommunityError(_("Choose to send the answer to the backer, publish it in the FAQ, or both."), field="reply")
    entry = None
    if publish:
        entry = db.session.get(FaqEntry, question.faq_entry_id) if question.faq_entry_id else None
        if entry is not None:  # published before: the FAQ entry is corrected, not repeated
            entry.question, entry.answer, entry.updated_at = faq_question or entry.question, answer, clock.utcnow()
        else:
            entry = _new_faq(campaign, faq_question or question.body[:300], answer)
            db.session.flush()
            question.faq_entry_id = entry.id
        touch(campaign.id)
    question.answer, question.answered_at = answer, clock.utcnow()
    if reply:
        asker = question.asker
        queue_mail(asker, _l("The creator of %(title)s answered your question", title=campaign.title), "question_answered",
                   campaign=campaign, question=question, answer=answer, published=publish, reader=asker)
    db.session.commit()
    return entry


# --- the campaign page -----------------------------------------------------------------------

@dataclass
class Section:
    """What the campaign page shows of the community, read in a bounded number of queries."""

    updates_count: int = 0
    comments_count: int = 0
    faq_count: int = 0
    updates: list[CampaignUpdate] = field(default_factory=list)
    excerpts: dict[int, str] = field(default_factory=dict)
    faq: list[FaqEntry] = field(default_factory=list)
    comments: CommentPage | None = None
    is_creator: bool = False
    is_moderator: bool = False
    is_backer: bool = False
    can_read_backer_content: bool = False
    can_comment: bool = False
    can_ask: bool = False


@dataclass(frozen=True, slots=True)
class HeldPledge:
    """What a campaign page says of its viewer's pledge: "You back this project · $60 · Manage"."""

    id: int
    amount: int
    currency: str


@dataclass(frozen=True)
class PageViewer:
    """Who looks at a campaign page, as far as its per-viewer parts care, read in one statement per request
    (none for a visitor). `role` is everything the community sections' HTML depends on: it keys their
    cached fragment, so members of the same role share it. A member who has comments on the campaign
    sees Delete on their own and a hidden one's note: their role holds their id, and their fragment is theirs.
    `pledge`: the pledge that holds their place ("You back this project"; not the creator's, not one
    still waiting for its card)."""

    member: bool = False
    creator: bool = False
    moderator: bool = False
    backer: bool = False
    commenter_id: int | None = None
    following: bool = False
    pledge: HeldPledge | None = None

    @property
    def role(self) -> tuple:
        return (self.member, self.creator, self.moderator, self.backer, self.commenter_id)


#: Built once, as the login-session check is: every member's view of a campaign page runs it, and
#: building it cost as much as running it. The pledge's three columns the page shows, not the pledge.
_VIEWER = (
    select(Pledge.id, Pledge.amount, Pledge.currency,
           _backer_clause(bindparam("campaign_id"), bindparam("user_id")),
           exists().where(Comment.campaign_id == bindparam("campaign_id"), Comment.author_id == bindparam("user_id")),
           exists().where(CampaignFollow.campaign_id == bindparam("campaign_id"), CampaignFollow.user_id == bindparam("user_id")))
    .select_from(select(literal(1).label("one")).subquery())  # one row, with the pledge or without
    .outerjoin(Pledge, and_(Pledge.campaign_id == bindparam("campaign_id"), Pledge.backer_id == bindparam("user_id"),
                            Pledge.state.in_([s.value for s in HOLDING if s is not PledgeState.PENDING])))
    .limit(1)
)


def page_viewer(campaign: Campaign, viewer: User | None) -> PageViewer:
    if not _member(viewer):
        return PageViewer()
    pledge_id, amount, currency, backer, commented, following = database.read_one(  # no transaction (a cached page's one read)
        db.engine, _VIEWER, {"campaign_id": campaign.id, "user_id": viewer.id})
    creator = is_creator(campaign, viewer)
    held = HeldPledge(pledge_id, amount, currency) if pledge_id is not None and not creator else None
    return PageViewer(member=True, creator=creator, moderator=is_moderator(viewer), backer=bool(backer),
                      commenter_id=viewer.id if commented else None, following=bool(following), pledge=held)


def campaign_section(campaign: Campaign, viewer: User | None, backer: bool) -> Section:
    """Counts in one query (`backer` from page_viewer); then only the lists that have something in them."""
    counts = select(
        select(func.count()).select_from(CampaignUpdate).where(CampaignUpdate.campaign_id == campaign.id).scalar_subquery(),
        select(func.count()).select_from(Comment).where(Comment.campaign_id == campaign.id).scalar_subquery(),
        select(func.count()).select_from(Comment).where(
            Comment.campaign_id == campaign.id, Comment.deleted_at.is_(None), Comment.hidden_at.is_(None)).scalar_subquery(),
        select(func.count()).select_from(FaqEntry).where(FaqEntry.campaign_id == campaign.id).scalar_subquery(),
    )
    n_updates, n_comment_rows, n_comments, n_faq = db.session.execute(counts).one()
    backer = backer and _member(viewer)
    section = Section(updates_count=n_updates or 0, comments_count=n_comments or 0, faq_count=n_faq or 0,
                      is_creator=is_creator(campaign, viewer), is_moderator=is_moderator(viewer), is_backer=backer)
    section.can_read_backer_content = can_read_backer_content(campaign, viewer, backer)
    section.can_comment = can_comment(campaign, viewer, backer)
    section.can_ask = can_ask(campaign, viewer, backer)
    if section.updates_count:
        section.updates = list(db.session.scalars(
            select(CampaignUpdate).where(CampaignUpdate.campaign_id == campaign.id)
            .order_by(CampaignUpdate.created_at.desc(), CampaignUpdate.id.desc()).limit(UPDATES_ON_PAGE)
        ).all())
        section.excerpts = {u.id: plain_excerpt(u.body, 240) for u in section.updates
                            if not u.backers_only or section.can_read_backer_content}
    if section.faq_count:
        section.faq = faq_entries(campaign)
    if n_comment_rows:
        section.comments = comment_threads(campaign)
    else:
        section.comments = CommentPage([], None)
    return section
