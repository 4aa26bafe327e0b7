"""Payout rules (SPEC §13): creators' payout accounts, the ledger, holds, and one transfer per funded
campaign, exactly once.

The transfer follows SETTLEMENT.md's discipline. A payout row with its amount and idempotency key is
committed (`sending`) before Stripe hears of it; a pass that finds a payout `sending` whose lease ran
out asks Stripe for the campaign's transfers first and adopts the one that names it; only when Stripe
has none is the transfer sent again, with the same key. A refusal (Stripe answered: nothing moved)
makes the payout `failed`, tried again later under a new key.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app import clock, money
from app.accounts.models import User
from app.campaigns import services as campaigns
from app.campaigns.models import Campaign, CampaignState
from app.extensions import db
from app.links import external_url
from app.notifications import services as mail
from app.payments import gateway
from app.payouts.models import LedgerEntry, LedgerKind, Payout, PayoutAccount, PayoutHold, PayoutState
from app.pledges.models import Pledge, PledgeState
from app.settlement import refunds
from app.settlement.models import AttemptStatus, ChargeAttempt
from app.settlement.report import estimate_stripe_fee

log = logging.getLogger("threshold.payouts")
P = PledgeState
S = PayoutState
K = LedgerKind

#: How long a pass holds a payout before another may look at it (a transfer takes well under this).
LEASE = timedelta(minutes=10)
#: After Stripe refused a transfer (the platform's balance, say), when to try again.
RETRY_AFTER = timedelta(hours=6)
#: How long after its deadline a successful campaign's ledger is kept up to date by every pass.
LEDGER_SYNC_DAYS = timedelta(days=45)
#: The countries and currencies a payout account can be opened with (Stripe Express, test mode).
ACCOUNT_CURRENCIES = {"US": "USD", "GB": "GBP", "FR": "EUR", "DE": "EUR", "JP": "JPY"}


class PayoutError(ValueError):
    """A refused payout action, with a message fit to show; `field` names the form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- payout accounts -------------------------------------------------------------------------

def account_for(user: User) -> PayoutAccount | None:
    return db.session.scalar(select(PayoutAccount).where(PayoutAccount.user_id == user.id))


def _copy_state(account: PayoutAccount, state: gateway.PayoutAccountState) -> bool:
    """Copy Stripe's word onto our row; True when payouts were just switched off."""
    lost = account.payouts_enabled and not state.payouts_enabled
    account.details_submitted = state.details_submitted
    account.payouts_enabled = state.payouts_enabled
    account.requirements_due = ",".join(state.requirements_due)
    account.refreshed_at = clock.utcnow()
    return lost


def start_onboarding(user: User, country: str | None = None) -> str:
    """The address of Stripe's hosted onboarding for the creator's payout account (made on first
    use, in the country's currency). Commits."""
    account = account_for(user)
    if account is None:
        if country not in ACCOUNT_CURRENCIES:
            raise PayoutError(_("Choose the country of your bank account."), "country")
        state = gateway.create_payout_account(user.id, user.email, country, ACCOUNT_CURRENCIES[country])
        account = PayoutAccount(user_id=user.id, stripe_account_id=state.id, country=state.country or country,
                                currency=state.currency or ACCOUNT_CURRENCIES[country])
        _copy_state(account, state)
        db.session.add(account)
        try:
            db.session.commit()
        except IntegrityError:  # the same creator's other request made it first (same idempotency key)
            db.session.rollback()
            account = account_for(user)
    return gateway.onboarding_link(account.stripe_account_id, return_url=external_url("payouts.onboarding_return"),
                                   refresh_url=external_url("payouts.account"))


def refresh_account(account: PayoutAccount) -> PayoutAccount:
    """Read the account's state from Stripe (after onboarding: the return URL proves nothing). Commits."""
    state = gateway.read_payout_account(account.stripe_account_id)
    lost = _copy_state(account, state)
    if lost:
        _tell_requirements_due(account)
    db.session.commit()
    return account


def apply_account_event(account_id: str) -> str:
    """Stripe says an account changed (`account.updated`): read it back from Stripe and keep it
    current. Returns a short outcome for the webhook log; raises only StripeUnavailable."""
    account = db.session.scalar(select(PayoutAccount).where(PayoutAccount.stripe_account_id == account_id))
    if account is None:
        return "ignored: no payout account has this id"
    try:
        refresh_account(account)
    except gateway.StripeUnavailable:
        raise
    except gateway.GatewayError as error:
        return f"ignored: account {account.id} not read ({error.code})"
    return f"payout account {account.id}: payouts {'enabled' if account.payouts_enabled else 'disabled'}"


def _tell_requirements_due(account: PayoutAccount) -> None:
    mail.queue_mail(account.user, _l("Stripe needs more information to pay you"), "payout_account_due",
                    account=account, link=external_url("payouts.account"))


def can_receive(user: User) -> bool:
    account = account_for(user)
    return account is not None and account.payouts_enabled


def _launch_requirement(campaign: Campaign) -> str | None:
    if can_receive(campaign.creator):
        return None
    return _("a payout account that can receive money (Set up payouts, under My payouts)")


campaigns.launch_requirements.append(_launch_requirement)


# --- the ledger ------------------------------------------------------------------------------

def _insert_missing(rows: list[dict]) -> None:
    """Insert ledger rows once per (kind, Stripe id), also when two passes do it at once."""
    if not rows:
        return
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(LedgerEntry).on_conflict_do_nothing(index_elements=["kind", "stripe_id"]), rows)


def sync_ledger(campaign: Campaign) -> None:
    """Write the ledger rows of the money settlement moved for a campaign and that are not there yet:
    each collected charge and its Stripe fee (an estimate at list price when Stripe reported none),
    each refund. Reads only what is missing (a second call is two index lookups per charge, no writes).
    Transfers and reversals are written by this area when it makes them. Does not commit."""
    _sync_ledgers(Pledge.campaign_id == campaign.id)


def _sync_ledgers(of_campaigns) -> None:
    """`sync_ledger` for every campaign matching the condition `of_campaigns` on `Pledge.campaign_id`, in two
    statements whatever their number."""
    charges = db.session.execute(
        select(ChargeAttempt, Pledge.id, Pledge.campaign_id)
        .join(Pledge, Pledge.id == ChargeAttempt.pledge_id)
        .where(of_campaigns, ChargeAttempt.status == AttemptStatus.SUCCEEDED.value,
               ChargeAttempt.payment_intent_id.is_not(None),
               ~select(LedgerEntry.id).where(LedgerEntry.kind == K.CHARGE.value,
                                             LedgerEntry.stripe_id == ChargeAttempt.payment_intent_id).exists())
    ).all()
    refunded = db.session.execute(
        select(ChargeAttempt, Pledge.id, Pledge.campaign_id, Pledge.refund_id)
        .join(Pledge, Pledge.id == ChargeAttempt.pledge_id)
        .where(of_campaigns, Pledge.state == P.REFUNDED.value, Pledge.refund_id.is_not(None),
               ChargeAttempt.status == AttemptStatus.SUCCEEDED.value,
               ~select(LedgerEntry.id).where(LedgerEntry.kind == K.REFUND.value, LedgerEntry.stripe_id == Pledge.refund_id).exists())
    ).all()
    rows = []
    for attempt, pledge_id, campaign_id in charges:
        base = {"campaign_id": campaign_id, "pledge_id": pledge_id, "currency": attempt.currency,
                "occurred_at": attempt.finished_at or attempt.created_at}
        rows.append({**base, "kind": K.CHARGE.value, "amount": attempt.amount, "stripe_id": attempt.payment_intent_id, "estimated": False})
        estimated = attempt.fee_amount is None
        fee = estimate_stripe_fee(attempt.amount, 1, attempt.currency) if estimated else attempt.fee_amount
        rows.append({**base, "kind": K.FEE.value, "amount": fee, "stripe_id": attempt.charge_id or attempt.payment_intent_id,
                     "estimated": estimated})
    for attempt, pledge_id, campaign_id, refund_id in refunded:
        rows.append({"campaign_id": campaign_id, "pledge_id": pledge_id, "currency": attempt.currency,
                     "occurred_at": clock.utcnow(), "kind": K.REFUND.value, "amount": attempt.amount,
                     "stripe_id": refund_id, "estimated": False})
    _insert_missing(rows)


def refresh_ledger(campaign: Campaign) -> None:
    """`sync_ledger`, committed."""
    sync_ledger(campaign)
    db.session.commit()


def sync_recent_ledgers(now: datetime) -> None:
    """Bring the ledgers of the campaigns that may still move money up to date (successful ones that
    passed their deadline within LEDGER_SYNC_DAYS: charging, retries and the payout hold), so that the pages read the
    ledger without writing: two statements a pass, whatever the number of those campaigns. Older campaigns'
    refunds write their own rows (`refund`), and the daily reconciliation syncs every campaign it checks. Commits."""
    recent = select(Campaign.id).where(Campaign.state == CampaignState.SUCCESSFUL.value,
                                       Campaign.deadline >= now - LEDGER_SYNC_DAYS)
    _sync_ledgers(Pledge.campaign_id.in_(recent))
    db.session.commit()


@dataclass(frozen=True)
class Books:
    """A campaign's money from its ledger, in minor units of `currency`."""

    currency: str
    collected: int
    refunded: int
    stripe_fees: int
    fees_estimated: bool
    platform_fee_percent: Decimal
    transferred: int
    reversed: int

    @property
    def platform_fee(self) -> int:
        return money.Money(self.collected - self.refunded, self.currency).percent(self.platform_fee_percent).amount

    @property
    def due(self) -> int:
        """What the creator is owed in all: collected − refunded − platform fee − Stripe's fees."""
        return self.collected - self.refunded - self.platform_fee - self.stripe_fees

    @property
    def paid(self) -> int:
        """What the creator holds of it now: transferred − reversed."""
        return self.transferred - self.reversed


def books_of(campaigns) -> dict[int, Books]:
    """The books of those `campaigns` whose ledger has rows, by campaign id (one grouped statement):
    the creator's money report reads its money lines from here."""
    by_id = {c.id: c for c in campaigns}
    if not by_id:
        return {}
    sums: dict[int, dict[str, tuple[int, bool]]] = {}
    for cid, kind, total, estimated in db.session.execute(
        select(LedgerEntry.campaign_id, LedgerEntry.kind, func.sum(LedgerEntry.amount), func.max(LedgerEntry.estimated.cast(db.Integer)))
        .where(LedgerEntry.campaign_id.in_(list(by_id))).group_by(LedgerEntry.campaign_id, LedgerEntry.kind)
    ):
        sums.setdefault(cid, {})[kind] = (int(total or 0), bool(estimated))
    percent = Decimal(str(current_app.config["PLATFORM_FEE_PERCENT"]))
    return {cid: _books(by_id[cid].currency, kinds, percent) for cid, kinds in sums.items()}


def _books(currency: str, kinds: dict[str, tuple[int, bool]], percent: Decimal) -> Books:
    def total(kind: LedgerKind) -> int:
        return kinds.get(kind.value, (0, False))[0]

    return Books(
        currency=currency, collected=total(K.CHARGE), refunded=total(K.REFUND), stripe_fees=total(K.FEE),
        fees_estimated=kinds.get(K.FEE.value, (0, False))[1], platform_fee_percent=percent,
        transferred=total(K.TRANSFER), reversed=total(K.REVERSAL),
    )


def books(campaign: Campaign) -> Books:
    """The campaign's money as its ledger has it (all zero before it has rows)."""
    return books_of([campaign]).get(campaign.id) or _books(
        campaign.currency, {}, Decimal(str(current_app.config["PLATFORM_FEE_PERCENT"])))


def ledger(campaign: Campaign) -> list[LedgerEntry]:
    return list(db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.campaign_id == campaign.id).order_by(LedgerEntry.occurred_at, LedgerEntry.id)
    ))


# --- holds -----------------------------------------------------------------------------------

def open_hold(campaign: Campaign) -> PayoutHold | None:
    return db.session.scalar(select(PayoutHold).where(PayoutHold.campaign_id == campaign.id, PayoutHold.released_at.is_(None))
                             .order_by(PayoutHold.id.desc()).limit(1))


def hold(campaign: Campaign, actor: User | None, note: str, kind: str = "moderator") -> PayoutHold:
    """Stop a campaign's payout until released (a moderator's note, or the risk signals). Commits."""
    note = (note or "").strip()
    if kind == "moderator" and not note:
        raise PayoutError(_("Say why the payout is held: the creator and the other moderators will read it."), "note")
    if campaign.state != CampaignState.SUCCESSFUL.value:
        raise PayoutError(_("Only a funded campaign has a payout to hold."))
    existing = open_hold(campaign)
    if existing is not None:
        raise PayoutError(_("This payout is already held."))
    paid = db.session.scalar(select(Payout).where(Payout.campaign_id == campaign.id, Payout.state == S.PAID.value))
    if paid is not None:
        raise PayoutError(_("This payout was already made."))
    made = PayoutHold(campaign_id=campaign.id, kind=kind, note=note, created_by_id=actor.id if actor else None, created_at=clock.utcnow())
    db.session.add(made)
    campaigns.record(campaign, "payout_hold", actor, note)
    db.session.commit()
    return made


def release(campaign: Campaign, actor: User, note: str = "") -> None:
    """Let a held payout go (the next pass pays it when it is due). Commits."""
    current = open_hold(campaign)
    if current is None:
        raise PayoutError(_("This payout is not held."))
    current.released_at, current.released_by_id, current.release_note = clock.utcnow(), actor.id, (note or "").strip()
    campaigns.record(campaign, "payout_release", actor, current.release_note)
    db.session.commit()


#: Risk signals: a share of pledges from accounts made after launch, several backers paying with one
#: card (Stripe's fingerprint), and open reports.
NEW_ACCOUNT_SHARE = Decimal("0.5")
NEW_ACCOUNT_MIN_PLEDGES = 5
SHARED_CARD_BACKERS = 3


def risk_signals(campaign: Campaign) -> list[str]:
    """The warning signs that hold a payout automatically, in words moderators read."""
    from app.community.report_models import CampaignReport as Report

    signals = []
    collected = [P.COLLECTED.value, P.REFUNDED.value]
    total, late = db.session.execute(
        select(func.count(), func.sum(func.cast(User.created_at > campaign.launched_at, db.Integer)))
        .select_from(Pledge).join(User, User.id == Pledge.backer_id)
        .where(Pledge.campaign_id == campaign.id, Pledge.state.in_(collected))
    ).one()
    total, late = int(total or 0), int(late or 0)
    if total >= NEW_ACCOUNT_MIN_PLEDGES and late >= total * NEW_ACCOUNT_SHARE:
        signals.append(_("%(late)d of %(total)d pledges come from accounts created after launch.", late=late, total=total))
    shared = db.session.execute(
        select(Pledge.card_fingerprint, func.count(func.distinct(Pledge.backer_id)))
        .where(Pledge.campaign_id == campaign.id, Pledge.state.in_(collected), Pledge.card_fingerprint.is_not(None))
        .group_by(Pledge.card_fingerprint).having(func.count(func.distinct(Pledge.backer_id)) >= SHARED_CARD_BACKERS)
    ).all()
    for _fingerprint, backers in shared:
        signals.append(_("%(num)d backers paid with the same card.", num=backers))
    open_reports = db.session.scalar(select(func.count()).select_from(Report).where(Report.campaign_id == campaign.id, Report.resolved_at.is_(None)))
    if open_reports:
        signals.append(_("%(num)d open reports about this campaign.", num=open_reports))
    return signals


# --- when a payout is due --------------------------------------------------------------------

def payout_date(campaign: Campaign) -> datetime | None:
    """When the hold after the deadline ends (PAYOUT_HOLD_DAYS)."""
    if campaign.deadline is None:
        return None
    return campaign.deadline + timedelta(days=int(current_app.config["PAYOUT_HOLD_DAYS"]))


#: Pledges whose money may still come in.
STILL_CHARGING = (P.CHARGING.value, P.ERRORED.value)


def charging_over(campaign: Campaign) -> bool:
    """Every pledge of the campaign is collected, refunded or dropped: nothing more will come in."""
    waiting = db.session.scalar(select(func.count()).select_from(Pledge).where(
        Pledge.campaign_id == campaign.id, Pledge.state.in_(STILL_CHARGING)))
    return not waiting


def _due_campaigns(now: datetime, limit: int) -> list[Campaign]:
    """Funded campaigns past their hold with no payout yet, neither held nor still charging: the worker
    asks every minute, so those waiting on a moderator or a backer's payment fix are left out in SQL
    (`schedule` checks both again)."""
    hold_days = int(current_app.config["PAYOUT_HOLD_DAYS"])
    return list(db.session.scalars(
        select(Campaign).where(
            Campaign.state == CampaignState.SUCCESSFUL.value, Campaign.deadline <= now - timedelta(days=hold_days),
            ~select(Payout.id).where(Payout.campaign_id == Campaign.id).exists(),
            ~select(PayoutHold.id).where(PayoutHold.campaign_id == Campaign.id, PayoutHold.released_at.is_(None)).exists(),
            ~select(Pledge.id).where(Pledge.campaign_id == Campaign.id, Pledge.state.in_(STILL_CHARGING)).exists(),
        ).order_by(Campaign.deadline).limit(limit)
    ))


def schedule(campaign: Campaign, now: datetime) -> Payout | None:
    """Fix the amount of a campaign's payout once its charging is over and the hold has passed; an
    automatic hold when the risk signals add up. Commits; None when it is not time yet."""
    if not charging_over(campaign) or open_hold(campaign) is not None:
        return None
    signals = risk_signals(campaign)
    if signals:
        hold(campaign, None, " ".join(signals), kind="risk")
        return None
    sync_ledger(campaign)
    figures = books(campaign)
    amount = figures.due - figures.paid
    payout = Payout(campaign_id=campaign.id, amount=max(amount, 0), currency=campaign.currency,
                    state=(S.DUE if amount > 0 else S.NOTHING).value, created_at=now)
    db.session.add(payout)
    try:
        db.session.commit()
    except IntegrityError:  # another pass scheduled it first
        db.session.rollback()
        return db.session.scalar(select(Payout).where(Payout.campaign_id == campaign.id))
    return payout


# --- paying ----------------------------------------------------------------------------------

def transfer_group(payout: Payout) -> str:
    """The campaign's transfer group at Stripe: its id, and the payout's seed so that another
    database that reused the id (a restored backup, a test run) never finds this one's transfers."""
    return f"campaign-{payout.campaign_id}-{payout.key_seed}"


#: The states a pass may take a payout in.
PAYABLE = (S.DUE.value, S.SENDING.value, S.FAILED.value)


def _claim(payout: Payout, account_id: str, now: datetime) -> bool:
    """Take a payout as this pass saw it (conditional: one pass at a time): its lease and, unless it
    is already in flight, the `sending` state with a new try, hence a new idempotency key. Committed
    before Stripe hears of it."""
    values: dict = {"lease_until": now + LEASE, "lease_owner": secrets.token_hex(8)}
    if payout.state != S.SENDING.value:
        values.update(state=S.SENDING.value, tries=Payout.tries + 1, stripe_account_id=account_id)
    taken = db.session.execute(
        update(Payout).where(
            Payout.id == payout.id, Payout.state == payout.state, Payout.state.in_(PAYABLE),
            or_(Payout.lease_until.is_(None), Payout.lease_until < now),
            or_(Payout.next_try_at.is_(None), Payout.next_try_at <= now),
        ).values(**values).execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return bool(taken)


def _record_paid(payout: Payout, transfer: gateway.TransferState, now: datetime) -> None:
    payout.state, payout.transfer_id, payout.paid_at = S.PAID.value, transfer.id, now
    payout.lease_until = payout.lease_owner = None
    payout.last_error = None
    _insert_missing([{"campaign_id": payout.campaign_id, "pledge_id": None, "kind": K.TRANSFER.value, "amount": transfer.amount,
                      "currency": payout.currency, "stripe_id": transfer.id, "estimated": False, "occurred_at": now}])
    campaign = payout.campaign
    mail.queue_mail(campaign.creator, _l("You were paid for “%(title)s”", title=campaign.title), "payout_paid",
                    campaign=campaign, payout=payout, link=external_url("payouts.campaign", slug=campaign.slug))
    db.session.commit()


def pay(payout: Payout, now: datetime) -> str:
    """Send one payout to Stripe, exactly once. Returns a short outcome for the pass's summary."""
    if payout.state not in PAYABLE:  # paid (or found empty) by another pass since this one listed it
        return "done elsewhere"
    campaign = payout.campaign
    account = account_for(campaign.creator)
    if account is None or not account.payouts_enabled:
        payout.next_try_at = now + RETRY_AFTER
        payout.last_error = "the creator's payout account cannot receive money yet"
        db.session.commit()
        return "waiting for the account"
    if open_hold(campaign) is not None:
        return "held"
    in_flight = payout.state == S.SENDING.value
    if not _claim(payout, account.stripe_account_id, now):
        return "busy"
    db.session.refresh(payout)
    group = transfer_group(payout)
    if in_flight:
        # Sent by an earlier pass that did not record the answer (or never sent): Stripe's record decides.
        try:
            made = [t for t in gateway.find_transfers(group) if t.metadata.get("payout") == str(payout.id)]
        except gateway.GatewayError as error:
            payout.lease_until = payout.lease_owner = None
            db.session.commit()
            log.warning("payout %s: could not ask Stripe: %s", payout.id, error)
            return "stripe unavailable"
        if made:
            _record_paid(payout, made[0], now)
            return "paid (found at Stripe)"
    try:
        transfer = gateway.create_transfer(
            payout.amount, payout.currency, payout.stripe_account_id, group=group,
            metadata={"payout": str(payout.id), "campaign": str(payout.campaign_id)}, idempotency_key=payout.idempotency_key,
        )
    except gateway.StripeUnavailable as error:
        # Maybe done, maybe not: stay `sending`; the next pass asks Stripe before anything else.
        payout.lease_until = now
        db.session.commit()
        log.warning("payout %s: Stripe unreachable: %s", payout.id, error)
        return "stripe unavailable"
    except gateway.GatewayError as error:
        # Stripe answered with a refusal: nothing moved. Tried again later under a new key.
        payout.state, payout.last_error = S.FAILED.value, f"{error.code}: {error.detail or error.message}"
        payout.lease_until = payout.lease_owner = None
        payout.next_try_at = now + RETRY_AFTER
        db.session.commit()
        log.warning("payout %s refused by Stripe: %s", payout.id, payout.last_error)
        return "refused"
    _record_paid(payout, transfer, now)
    return "paid"


@dataclass
class PassSummary:
    scheduled: int = 0
    outcomes: dict | None = None

    def lines(self) -> list[str]:
        out = [f"payouts scheduled: {self.scheduled}"] if self.scheduled else []
        out += [f"payout {pid}: {outcome}" for pid, outcome in (self.outcomes or {}).items()]
        return out


def run_pass(now: datetime | None = None, limit: int = 100) -> PassSummary:
    """One payout pass: schedule the payouts that fell due, then pay those due. Safe to run again and
    in several processes at once."""
    now = now or clock.utcnow()
    summary = PassSummary(outcomes={})
    sync_recent_ledgers(now)
    for campaign in _due_campaigns(now, limit):
        if schedule(campaign, now) is not None:
            summary.scheduled += 1
    waiting = db.session.scalars(
        select(Payout).where(Payout.state.in_(PAYABLE),
                             or_(Payout.lease_until.is_(None), Payout.lease_until < now),
                             or_(Payout.next_try_at.is_(None), Payout.next_try_at <= now))
        .order_by(Payout.id).limit(limit)
    ).all()
    if summary.scheduled:
        log.info("payouts: %d scheduled", summary.scheduled)
    with mail.mail_batch():  # one made-up request context for the creators' mails, not one each
        for payout in waiting:
            summary.outcomes[payout.id] = outcome = pay(payout, now)
            log.info("payout %s: %s", payout.id, outcome)
    return summary


def payout_of(campaign: Campaign) -> Payout | None:
    return db.session.scalar(select(Payout).where(Payout.campaign_id == campaign.id))


def payouts_of(campaigns) -> dict[int, Payout]:
    """The payouts of the funded ones among `campaigns`, by campaign id (one statement)."""
    funded = [c.id for c in campaigns if c.state == CampaignState.SUCCESSFUL.value]
    if not funded:
        return {}
    return {p.campaign_id: p for p in db.session.scalars(select(Payout).where(Payout.campaign_id.in_(funded)))}


# --- refunds after the payout ----------------------------------------------------------------

def refund(pledge: Pledge, moderator: User, note: str) -> Pledge:
    """A moderator refunds a collected pledge (settlement's refund), after taking the pledge's part back
    from the creator's transfer when the campaign was already paid out (SPEC §13). A reversal Stripe
    refuses refunds nothing. Commits; raises RefundError with a message fit to show."""
    allowed = getattr(moderator, "is_moderator", False) and (note or "").strip() and pledge.state == P.COLLECTED.value
    if allowed:  # otherwise settlement's refund refuses it, with its own words
        try:
            reverse_for_refund(pledge, note)
        except gateway.GatewayError as error:
            raise refunds.RefundError(_("The creator’s payout could not be reversed, so nothing was refunded: %(why)s",
                                        why=error.message)) from None
    refunded = refunds.refund(pledge, moderator, note)
    refresh_ledger(refunded.campaign)  # the refund's row, also for a campaign past LEDGER_SYNC_DAYS
    return refunded


def reverse_for_refund(pledge: Pledge, note: str) -> str | None:
    """Before a collected pledge is refunded after its campaign was paid out, take the pledge's amount
    back from the creator's transfer (a Transfer Reversal), so the platform never pays a refund from
    its own pocket. Returns the reversal's id (None when nothing was paid out). Commits its ledger row."""
    payout = db.session.scalar(select(Payout).where(Payout.campaign_id == pledge.campaign_id, Payout.state == S.PAID.value))
    if payout is None or not payout.transfer_id:
        return None
    already = db.session.scalar(select(LedgerEntry).where(LedgerEntry.kind == K.REVERSAL.value, LedgerEntry.pledge_id == pledge.id))
    if already is not None:
        return already.stripe_id
    # The whole pledge comes back (the backer is refunded in full), never more than the creator holds.
    figures = books(pledge.campaign)
    amount = min(pledge.amount, figures.paid)
    if amount <= 0:
        return None
    charge = db.session.scalar(select(ChargeAttempt.payment_intent_id).where(
        ChargeAttempt.pledge_id == pledge.id, ChargeAttempt.status == AttemptStatus.SUCCEEDED.value))
    # The key names the pledge's charge at Stripe: the same across retries, unique for ever.
    reversal_id = gateway.reverse_transfer(payout.transfer_id, amount, metadata={"pledge": str(pledge.id), "note": note[:200]},
                                           idempotency_key=f"reversal-{charge}")
    _insert_missing([{"campaign_id": pledge.campaign_id, "pledge_id": pledge.id, "kind": K.REVERSAL.value, "amount": amount,
                      "currency": pledge.currency, "stripe_id": reversal_id, "estimated": False, "occurred_at": clock.utcnow()}])
    db.session.commit()
    return reversal_id
