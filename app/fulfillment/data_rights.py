"""A member's data rights (issue 17, SPEC §14): the export of everything Threshold holds about them
(`GET /me/data`), and the deletion of their account, which erases their personal data and keeps the
money records a ledger must keep (pledges, charges and ledger rows, with their amounts, pointing at
an anonymised account).

Fulfillment sits above pledges and beside settlement; the community and payouts areas sit beside or
above it. Their tables are read here by name through the schema (`_table`), never by importing their
modules: this file needs their rows, not their rules, and an import would tie the floors together.

`PERSONAL_TABLES` is the one list of every table that points at a member or at a pledge, with what
the export and the deletion do with it; tests/test_fulfillment_data_rights.py fails when a table
appears that it does not name.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import Table, delete, func, or_, select, update

from app import clock
from app.accounts import services as accounts
from app.accounts.models import AccountEvent, LoginSession, User
from app.campaigns.models import Addon, Campaign, CampaignEvent, CampaignState, Tier
from app.extensions import db
from app.fulfillment import addresses
from app.fulfillment.models import (
    ErasureReason,
    FulfillmentEvent,
    FulfillmentItem,
    ProblemMessage,
    ShippingAddress,
    Survey,
    SurveyAnswer,
    SurveyRequest,
)
from app.notifications.models import OutboxMessage
from app.payments import gateway
from app.pledges import services as pledges
from app.pledges.models import Pledge, PledgeEvent, PledgeState

log = logging.getLogger("threshold.data_rights")
P = PledgeState

#: Version of the export's layout, for whoever reads the file later.
EXPORT_FORMAT = "threshold-member-data/1"

#: Every table holding a column that points at a member (users.id) or at a pledge (a member's
#: pledge is personal too), with what the export and the account's deletion do with it.
PERSONAL_TABLES: dict[str, str] = {
    "users": "exported (no password hash); anonymised in place on deletion",
    "login_sessions": "exported (dates only, never the session id); all revoked on deletion",
    "account_events": "exported; a deletion writes one (the audit row)",
    "campaigns": "exported with tiers and add-ons; kept on deletion, the creator shown as a deleted member",
    "campaign_events": "rows the member acted in exported; kept (audit log)",
    "pledges": "exported; live ones canceled on deletion, the others kept with their amounts (money records)",
    "pledge_addons": "exported with the pledge; kept (parts of the amount)",
    "pledge_events": "exported with the pledge and where the member acted; kept (audit log)",
    "charge_attempts": "exported with the pledge (amounts, states; no card data); kept (money records)",
    "ledger_entries": "not personal: the campaign's money movements (Stripe ids, amounts); kept",
    "shipping_addresses": "exported; erased at once on deletion (addresses.erase_for_member)",
    "survey_requests": "exported (dates); kept",
    "survey_answers": "exported; deleted on deletion (free text may identify the member)",
    "campaign_updates": "exported; kept on deletion (the campaign's record to its backers)",
    "comments": "exported (own comments; moderation notes written); body blanked and marked deleted on deletion",
    "campaign_questions": "exported (questions asked); body blanked on deletion",
    "campaign_reports": "exported (reports filed, resolutions written); kept for the moderators",
    "payout_accounts": "exported (ids and state; Stripe holds the identity); kept (the ledger's transfers)",
    "payout_holds": "holds the member placed or released exported; kept (audit log)",
    "fulfillment_items": "exported with the pledge (what shipped, tracking, delivered); kept (the delivery record)",
    "fulfillment_events": "rows the member acted in exported; kept (audit log)",
    "problem_messages": "exported (own messages about a delivery problem); body blanked on deletion",
    "campaign_follows": "exported (campaigns saved, when reminded); deleted on deletion",
}


class DeletionRefused(ValueError):
    """The account cannot be deleted now; the message says what must happen first. `field` names the
    form field it belongs to."""

    def __init__(self, message: str, field: str | None = "password") -> None:
        super().__init__(message)
        self.field = field


def _table(name: str) -> Table:
    """A table of an area this one does not import (community, payouts, settlement), by name."""
    return db.metadata.tables[name]


def _when(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _rows(statement) -> list[dict[str, Any]]:
    return [{key: _when(value) if isinstance(value, datetime | date) else value for key, value in row.items()}
            for row in db.session.execute(statement).mappings()]


# --- the export -------------------------------------------------------------------------------

def _account(user: User) -> dict:
    return {
        "id": user.id, "email": user.email, "display_name": user.display_name, "created_at": _when(user.created_at),
        "password_changed_at": _when(user.password_changed_at), "is_moderator": user.is_moderator,
        "locale": user.locale, "timezone": user.timezone, "stripe_customer_id": user.stripe_customer_id,
        "notifications": {"updates": user.email_updates, "replies": user.email_replies, "reminders": user.email_reminders,
                          "new_backers": user.email_new_backers, "moderation": user.email_moderation},
        "failed_logins": user.login_failures, "locked_until": _when(user.locked_until),
    }


def _address(address: ShippingAddress | None) -> dict | None:
    if address is None:
        return None
    fields = {name: getattr(address, name) for name in (*addresses.PERSONAL, "country")}
    return {**fields, "updated_at": _when(address.updated_at), "delivered_at": _when(address.delivered_at),
            "erased_at": _when(address.erased_at), "erased_reason": address.erased_reason}


def _survey(pledge: Pledge) -> dict | None:
    request = db.session.scalar(select(SurveyRequest).where(SurveyRequest.pledge_id == pledge.id))
    answers = db.session.scalars(select(SurveyAnswer).where(SurveyAnswer.pledge_id == pledge.id).order_by(SurveyAnswer.id)).all()
    if request is None and not answers:
        return None
    return {
        "sent_at": _when(request.sent_at) if request else None,
        "answered_at": _when(request.answered_at) if request else None,
        "answers": [{"question": answer.question.prompt, "answer": answer.value, "updated_at": _when(answer.updated_at)}
                    for answer in answers],
    }


def _items(pledge: Pledge) -> list[dict]:
    """What the pledge is owed and how far it has come, with the member's own messages about a problem."""
    items = db.session.scalars(select(FulfillmentItem).where(FulfillmentItem.pledge_id == pledge.id).order_by(FulfillmentItem.id)).all()
    return [{
        "item": item.item, "quantity": item.quantity, "state": item.state, "carrier": item.carrier, "tracking": item.tracking,
        "shipped_on": _when(item.shipped_on), "delivered_at": _when(item.delivered_at), "problem": item.problem,
        "messages": _rows(select(ProblemMessage.body, ProblemMessage.created_at)
                          .where(ProblemMessage.item_id == item.id, ProblemMessage.author_id == pledge.backer_id)
                          .order_by(ProblemMessage.id)),
    } for item in items]


def _charges(pledge_id: int) -> list[dict]:
    attempts = _table("charge_attempts")
    c = attempts.c
    return _rows(select(c.attempt, c.amount, c.currency, c.status, c.decline_code, c.created_at, c.finished_at)
                 .where(c.pledge_id == pledge_id).order_by(c.attempt))


def _pledge(pledge: Pledge) -> dict:
    return {
        "id": pledge.id,
        "campaign": {"slug": pledge.campaign.slug, "title": pledge.campaign.title},
        "state": pledge.state, "currency": pledge.currency, "amount": pledge.amount,
        "parts": {"reward": pledge.reward_amount, "add_ons": pledge.addons_amount, "shipping": pledge.shipping_amount,
                  "bonus": pledge.bonus_amount},
        "reward": pledge.tier.title if pledge.tier else None,
        "add_ons": [{"title": line.addon.title, "quantity": line.quantity, "unit_amount": line.unit_amount,
                     "shipping_amount": line.shipping_amount} for line in pledge.addons],
        "country": pledge.country,
        "card": {"brand": pledge.card_brand, "last4": pledge.card_last4} if pledge.card_last4 else None,
        "created_at": _when(pledge.created_at), "activated_at": _when(pledge.activated_at),
        "collected_at": _when(pledge.collected_at), "ended_at": _when(pledge.ended_at),
        "history": [{"action": event.action, "from": event.from_state, "to": event.to_state, "amount": event.amount,
                     "at": _when(event.created_at)}
                    for event in db.session.scalars(select(PledgeEvent).where(PledgeEvent.pledge_id == pledge.id)
                                                    .order_by(PledgeEvent.id))],
        "charges": _charges(pledge.id),
        "shipping_address": _address(db.session.scalar(select(ShippingAddress).where(ShippingAddress.pledge_id == pledge.id))),
        "survey": _survey(pledge),
        "items": _items(pledge),
    }


def _offer(item: Tier | Addon) -> dict:
    return {"title": item.title, "description": item.description, "amount": item.amount,
            "quantity_limit": item.quantity_limit, "claimed": item.claimed, "ships": item.ships,
            "removed_at": _when(item.deleted_at)}


def _backers(campaign: Campaign) -> dict:
    """Other members' pledges to the member's campaign: counts and sums per state, never who."""
    rows = db.session.execute(
        select(Pledge.state, func.count(), func.coalesce(func.sum(Pledge.amount), 0))
        .where(Pledge.campaign_id == campaign.id).group_by(Pledge.state)
    ).all()
    return {state: {"count": count, "amount": int(total)} for state, count, total in sorted(rows)}


def _campaign(campaign: Campaign) -> dict:
    payouts = _table("payouts").c
    survey = db.session.scalar(select(Survey).where(Survey.campaign_id == campaign.id))
    return {
        "slug": campaign.slug, "title": campaign.title, "blurb": campaign.blurb, "category": campaign.category,
        "state": campaign.state, "goal": campaign.goal, "currency": campaign.currency,
        "duration_days": campaign.duration_days, "story": campaign.story, "risks": campaign.risks,
        "created_at": _when(campaign.created_at), "launched_at": _when(campaign.launched_at),
        "deadline": _when(campaign.deadline), "ended_at": _when(campaign.ended_at),
        "tiers": [_offer(tier) for tier in db.session.scalars(select(Tier).where(Tier.campaign_id == campaign.id).order_by(Tier.id))],
        "add_ons": [_offer(addon) for addon in db.session.scalars(select(Addon).where(Addon.campaign_id == campaign.id).order_by(Addon.id))],
        "pledges": _backers(campaign),
        "survey_questions": [{"prompt": q.prompt, "kind": q.kind, "options": q.options} for q in survey.questions] if survey else [],
        "payout": next(iter(_rows(select(payouts.amount, payouts.currency, payouts.state, payouts.paid_at)
                                  .where(payouts.campaign_id == campaign.id))), None),
    }


def _written(user: User) -> dict:
    """What the member wrote on campaigns: updates, comments, questions, reports."""
    updates, comments = _table("campaign_updates").c, _table("comments").c
    questions, reports = _table("campaign_questions").c, _table("campaign_reports").c
    slug = Campaign.slug.label("campaign")
    return {
        "updates": _rows(select(slug, updates.title, updates.body, updates.backers_only, updates.created_at, updates.edited_at)
                         .join(Campaign, Campaign.id == updates.campaign_id).where(updates.author_id == user.id)
                         .order_by(updates.id)),
        "comments": _rows(select(slug, comments.id, comments.parent_id, comments.body, comments.created_at,
                                 comments.deleted_at, comments.hidden_at, comments.hidden_note)
                          .join(Campaign, Campaign.id == comments.campaign_id).where(comments.author_id == user.id)
                          .order_by(comments.id)),
        "questions": _rows(select(slug, questions.body, questions.created_at, questions.answer, questions.answered_at)
                           .join(Campaign, Campaign.id == questions.campaign_id).where(questions.asker_id == user.id)
                           .order_by(questions.id)),
        "reports": _rows(select(slug, reports.reason, reports.note, reports.created_at, reports.updated_at,
                                reports.resolved_at, reports.resolution)
                         .join(Campaign, Campaign.id == reports.campaign_id).where(reports.reporter_id == user.id)
                         .order_by(reports.id)),
    }


def _acted(user: User) -> dict:
    """Audit rows where the member is the actor (their campaigns' transitions; a moderator's decisions,
    holds, hidden comments and resolved reports — their own notes, never the other member's words)."""
    holds, comments, reports = _table("payout_holds").c, _table("comments").c, _table("campaign_reports").c
    slug = Campaign.slug.label("campaign")
    return {
        "campaign_events": _rows(select(slug, CampaignEvent.action, CampaignEvent.from_state, CampaignEvent.to_state,
                                        CampaignEvent.note, CampaignEvent.created_at)
                                 .join(Campaign, Campaign.id == CampaignEvent.campaign_id)
                                 .where(CampaignEvent.actor_id == user.id).order_by(CampaignEvent.id)),
        "pledge_events": _rows(select(PledgeEvent.pledge_id, PledgeEvent.action, PledgeEvent.from_state, PledgeEvent.to_state,
                                      PledgeEvent.note, PledgeEvent.created_at)
                               .where(PledgeEvent.actor_id == user.id).order_by(PledgeEvent.id)),
        "payout_holds": _rows(select(slug, holds.kind, holds.note, holds.created_at, holds.released_at, holds.release_note)
                              .join(Campaign, Campaign.id == holds.campaign_id)
                              .where(or_(holds.created_by_id == user.id, holds.released_by_id == user.id))
                              .order_by(holds.id)),
        "comments_hidden": _rows(select(slug, comments.id.label("comment_id"), comments.hidden_at, comments.hidden_note)
                                 .join(Campaign, Campaign.id == comments.campaign_id)
                                 .where(comments.hidden_by_id == user.id).order_by(comments.id)),
        "reports_resolved": _rows(select(slug, reports.resolution, reports.resolution_note, reports.resolved_at)
                                  .join(Campaign, Campaign.id == reports.campaign_id)
                                  .where(reports.resolved_by_id == user.id).order_by(reports.id)),
        "account_events": _rows(select(AccountEvent.action, AccountEvent.note, AccountEvent.created_at)
                                .where(AccountEvent.user_id == user.id).order_by(AccountEvent.id)),
        "fulfillment_events": _rows(select(FulfillmentEvent.item_id, FulfillmentEvent.action, FulfillmentEvent.from_state,
                                           FulfillmentEvent.to_state, FulfillmentEvent.note, FulfillmentEvent.created_at)
                                    .where(FulfillmentEvent.actor_id == user.id).order_by(FulfillmentEvent.id)),
    }


def export_member(user: User) -> dict:
    """Everything Threshold holds about `user`, as JSON-ready data: the account (never the password
    hash or session ids), logins, pledges with their parts, charges, address and survey answers,
    campaigns created (other backers only as counts and sums), what they wrote, their payout
    account, the mails sent to them and the audit rows where they acted."""
    accounts_table, follows = _table("payout_accounts").c, _table("campaign_follows").c
    return {
        "format": EXPORT_FORMAT,
        "exported_at": _when(clock.utcnow()),
        "account": _account(user),
        "logins": _rows(select(LoginSession.created_at, LoginSession.revoked_at)
                        .where(LoginSession.user_id == user.id).order_by(LoginSession.created_at)),
        "pledges": [_pledge(pledge) for pledge in db.session.scalars(
            select(Pledge).where(Pledge.backer_id == user.id).order_by(Pledge.id))],
        "campaigns": [_campaign(campaign) for campaign in db.session.scalars(
            select(Campaign).where(Campaign.creator_id == user.id).order_by(Campaign.id))],
        **_written(user),
        "payout_account": next(iter(_rows(
            select(accounts_table.stripe_account_id, accounts_table.country, accounts_table.currency,
                   accounts_table.details_submitted, accounts_table.payouts_enabled, accounts_table.requirements_due,
                   accounts_table.created_at).where(accounts_table.user_id == user.id))), None),
        "emails": _rows(select(OutboxMessage.subject, OutboxMessage.kind, OutboxMessage.created_at, OutboxMessage.sent_at)
                        .where(OutboxMessage.recipient == user.email).order_by(OutboxMessage.id)),
        "saved_campaigns": _rows(select(Campaign.slug.label("campaign"), follows.created_at, follows.reminded_at)
                                 .join(Campaign, Campaign.id == follows.campaign_id)
                                 .where(follows.user_id == user.id).order_by(follows.id)),
        "audit": _acted(user),
    }


def record_export(user: User) -> None:
    """The export is an audit row of the account. Commits."""
    db.session.add(AccountEvent(user_id=user.id, action="data_exported", actor_id=user.id))
    db.session.commit()


# --- deleting the account ---------------------------------------------------------------------

#: A creator's campaign in these states stops a deletion: backers or moderators are waiting on it.
_BUSY = (CampaignState.SUBMITTED, CampaignState.LIVE)
#: A payout in these states is not over yet (PayoutState's values; payouts is not imported here).
_PAYOUT_DONE = ("paid", "nothing")


def refusals(user: User) -> list[str]:
    """Why `user`'s account cannot be deleted now, each with what must happen first (empty: it can)."""
    reasons = []
    now = clock.utcnow()
    for campaign in db.session.scalars(select(Campaign).where(Campaign.creator_id == user.id, Campaign.state.in_(_BUSY))
                                       .order_by(Campaign.id)):
        if campaign.state == CampaignState.LIVE:
            reasons.append(_("Your campaign “%(title)s” is live: its backers are waiting on it. You can delete your "
                             "account once it has ended and its payout has been made.", title=campaign.title))
        else:
            reasons.append(_("Your campaign “%(title)s” is being reviewed by the moderators. You can delete your "
                             "account once they have decided.", title=campaign.title))
    payouts_table = _table("payouts")
    payouts = payouts_table.c
    unpaid = db.session.execute(
        select(Campaign.title).outerjoin(payouts_table, payouts.campaign_id == Campaign.id)
        .where(Campaign.creator_id == user.id, Campaign.state == CampaignState.SUCCESSFUL,
               or_(payouts.id.is_(None), payouts.state.not_in(_PAYOUT_DONE)))
        .order_by(Campaign.id)
    ).scalars().all()
    for title in unpaid:
        reasons.append(_("The payout of your campaign “%(title)s” has not been made yet. You can delete your account "
                         "once it has been paid to you.", title=title))
    for pledge in db.session.scalars(select(Pledge).where(Pledge.backer_id == user.id).order_by(Pledge.id)):
        campaign = pledge.campaign
        if pledge.state in (P.CHARGING, P.ERRORED) or (
                pledge.state == P.ACTIVE and (campaign.state != CampaignState.LIVE or (campaign.deadline and campaign.deadline <= now))):
            reasons.append(_("Your pledge to “%(title)s” is being charged. You can delete your account once the "
                             "payment is settled.", title=campaign.title))
    return reasons


def _cancel_live_pledges(user: User) -> int:
    """Withdraw the member's pledges that a deadline has not reached yet, as the backer's own cancel
    does (claims released, card released at Stripe)."""
    canceled = 0
    live = db.session.scalars(select(Pledge).where(Pledge.backer_id == user.id, Pledge.state.in_((P.PENDING, P.ACTIVE)))
                              .order_by(Pledge.id)).all()
    for pledge in live:
        try:
            pledges.cancel(pledge, user)
        except pledges.PledgeError:
            # Only a card setup left unfinished past a deadline gets here (an active pledge past its
            # deadline refuses the deletion first): it holds nothing and is never charged.
            if pledge.state != P.PENDING:
                raise
            continue
        canceled += 1
    return canceled


def _forget_at_stripe(user: User, email: str) -> None:
    """The Stripe customer goes; if Stripe holds charges of this member that the books reconcile
    (found through the customer), it stays under the placeholder address instead."""
    customer = user.stripe_customer_id
    if not customer:
        return
    attempts = _table("charge_attempts").c
    charged = db.session.scalar(select(func.count()).select_from(_table("charge_attempts"))
                                .join(Pledge, Pledge.id == attempts.pledge_id).where(Pledge.backer_id == user.id))
    try:
        if charged:
            gateway.rename_customer(customer, email, accounts.DELETED_NAME)
        else:
            gateway.delete_customer(customer)
            user.stripe_customer_id = None
            db.session.commit()
    except gateway.GatewayError as error:  # the account is gone on our side already; a person can finish this
        log.warning("account %s deleted; its Stripe customer %s was not: %s", user.id, customer, error)


def delete_account(user: User, password: str) -> dict[str, int]:
    """Delete `user`'s account after checking their password: refused (DeletionRefused) while a
    campaign of theirs is live or in review, a payout unpaid or a pledge being charged. Otherwise their
    live pledges are canceled, their addresses erased at once, their survey answers deleted, their
    comments and questions blanked, their mails forgotten; the account row is anonymised and every
    login ends; the Stripe customer is deleted; one audit row says what was done. Money records stay.
    Commits. Returns the counts written in the audit row."""
    if not accounts.password_matches(user, password):
        raise DeletionRefused(_("This is not your password."))
    reasons = refusals(user)
    if reasons:
        raise DeletionRefused(" ".join(reasons))
    user_id = user.id
    old_email = user.email
    done = {"pledges_canceled": _cancel_live_pledges(user)}
    done["addresses_erased"] = addresses.erase_for_member(user, ErasureReason.ACCOUNT)
    user = db.session.get(User, user_id)  # erase_for_member expired the session's objects

    mine = select(Pledge.id).where(Pledge.backer_id == user_id)
    done["survey_answers_deleted"] = db.session.execute(
        delete(SurveyAnswer).where(SurveyAnswer.pledge_id.in_(mine)).execution_options(synchronize_session=False)).rowcount
    comments, questions = _table("comments"), _table("campaign_questions")
    now = clock.utcnow()
    done["comments_blanked"] = db.session.execute(
        update(comments).where(comments.c.author_id == user_id)
        .values(body="", deleted_at=func.coalesce(comments.c.deleted_at, now))).rowcount
    done["questions_blanked"] = db.session.execute(
        update(questions).where(questions.c.asker_id == user_id).values(body="")).rowcount
    follows = _table("campaign_follows")
    done["saved_campaigns_deleted"] = db.session.execute(delete(follows).where(follows.c.user_id == user_id)).rowcount
    done["messages_blanked"] = db.session.execute(
        update(ProblemMessage).where(ProblemMessage.author_id == user_id).values(body="")
        .execution_options(synchronize_session=False)).rowcount
    done["emails_forgotten"] = db.session.execute(
        delete(OutboxMessage).where(OutboxMessage.recipient == old_email).execution_options(synchronize_session=False)).rowcount
    accounts.anonymise(user)
    db.session.add(AccountEvent(user_id=user_id, action="deleted", actor_id=user_id,
                                note=", ".join(f"{key}={value}" for key, value in done.items())))
    db.session.commit()
    _forget_at_stripe(user, user.email)
    return done


def deletion_summary(done: dict[str, int]) -> str:
    """What a deletion did, in a sentence for the member (shown once, after they are logged out)."""
    canceled = done.get("pledges_canceled", 0)
    if canceled:
        return ngettext("Your account is deleted, and %(num)d pledge was canceled.",
                        "Your account is deleted, and %(num)d pledges were canceled.", canceled)
    return _("Your account is deleted.")
