"""The settlement pass (SPEC §6, SETTLEMENT.md): plain functions that query, act and commit.

One pass: decide every live campaign past its deadline (once), sweep pledges of stopped campaigns,
drop errored pledges whose retry window is over, charge what is due (in leased batches, several
charges at once), and release saved cards that will never be charged. Every step can be killed at
any instant and run again, in several processes at once on PostgreSQL, without a double charge.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import joinedload, selectinload

from app import clock, logs
from app.campaigns import services as campaigns
from app.campaigns.models import Campaign, CampaignState
from app.extensions import db
from app.notifications import services as mail
from app.payments import declines, gateway
from app.pledges import services as pledges
from app.pledges.models import Pledge, PledgeState
from app.settlement.models import AttemptStatus, ChargeAttempt

P = PledgeState
A = AttemptStatus
log = logging.getLogger("threshold.settlement")

LEASE = timedelta(minutes=10)
RETRY_EVERY = timedelta(days=1)
LOOK_AGAIN = timedelta(minutes=5)  # a PaymentIntent still `processing`
#: An attempt without a saved PaymentIntent is sent again under its own key while the key surely lives at
#: Stripe: the key is born after the attempt row is committed, and Stripe keeps it IDEMPOTENCY_KEY_LIFETIME;
#: an hour of margin covers our retries and the clocks. Later, the PaymentIntent is looked up by metadata.
RESEND_WITHIN = gateway.IDEMPOTENCY_KEY_LIFETIME - timedelta(hours=1)


@dataclass
class Summary:
    """What one pass did, per campaign (for the one-line report of `settle`)."""

    decided: dict[int, str] = field(default_factory=dict)
    outcomes: Counter = field(default_factory=Counter)  # (campaign_id, "collected"|"errored"|…) -> n
    cards_released: int = 0
    #: Pledges due for a charge that another pass holds: (campaign id, owner, count, lease end).
    held: list[tuple[int, str, int, datetime]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, campaign_id: int, outcome: str) -> None:
        with self._lock:  # charges run in several threads
            self.outcomes[(campaign_id, outcome)] += 1

    def lines(self) -> list[str]:
        ids = sorted(set(self.decided) | {c for c, _o in self.outcomes})
        out = []
        for cid in ids:
            parts = [f"campaign {cid}:"]
            if cid in self.decided:
                parts.append(self.decided[cid])
            parts += [f"{n} {o}" for (c, o), n in sorted(self.outcomes.items()) if c == cid]
            out.append(" ".join(parts))
        if self.cards_released:
            out.append(f"{self.cards_released} saved card(s) released")
        for campaign_id, owner, count, until in self.held:
            out.append(f"campaign {campaign_id}: {count} pledge(s) waiting, held by pass {owner} until {until:%Y-%m-%d %H:%M:%S} UTC "
                       "(a pass that stopped, or one still running); the first pass after that charges them")
        return out or ["nothing to do"]


def _is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


# --- 1. deciding campaigns -------------------------------------------------------------------

def decide_due_campaigns(summary: Summary, now: datetime | None = None) -> None:
    """Decide every live campaign whose deadline has passed, each exactly once."""
    now = now or clock.utcnow()
    due = db.session.scalars(
        select(Campaign.id).where(Campaign.state == CampaignState.LIVE.value, Campaign.deadline <= now).order_by(Campaign.deadline)
    ).all()
    db.session.rollback()
    for campaign_id in due:
        outcome = decide_campaign(campaign_id, now)
        if outcome:
            summary.decided[campaign_id] = outcome


def decide_campaign(campaign_id: int, now: datetime) -> str | None:
    """successful or unsuccessful, from the sum of active pledges taken after the lock; None when
    another pass decided it first. Commits."""
    campaign = pledges.lock_campaign(campaign_id, exclusive=True)
    if campaign.state != CampaignState.LIVE.value or campaign.deadline is None or campaign.deadline > now:
        db.session.rollback()
        return None
    total, backers = db.session.execute(
        select(func.coalesce(func.sum(Pledge.amount), 0), func.count())
        .where(Pledge.campaign_id == campaign.id, Pledge.state == P.ACTIVE.value)
    ).one()
    total, backers = int(total), int(backers)
    funded = total >= campaign.goal
    campaigns.transition(campaign, "succeed" if funded else "fail", None, f"{total} of {campaign.goal} {campaign.currency} from {backers} backers")
    campaign.ended_at = now
    campaign.pledged_at_deadline, campaign.backers_at_deadline = total, backers
    backer_rows = db.session.scalars(
        select(Pledge).options(joinedload(Pledge.backer)).where(Pledge.campaign_id == campaign.id, Pledge.state == P.ACTIVE.value)
    ).all()
    template = "campaign_funded_backer" if funded else "campaign_unfunded_backer"
    subject = (_l("“%(title)s” is funded: your pledge will be collected", title=campaign.title) if funded
               else _l("“%(title)s” did not reach its goal: you will not be charged", title=campaign.title))
    with mail.mail_batch():
        for pledge in backer_rows:
            mail.queue_mail(pledge.backer, subject, template, pledge=pledge, campaign=campaign)
        mail.queue_mail(campaign.creator,
                        _l("“%(title)s” is funded!", title=campaign.title) if funded else _l("“%(title)s” did not reach its goal", title=campaign.title),
                        "campaign_decided_creator", campaign=campaign, funded=funded, total=total, backers=backers)
    if funded:
        pledges.bulk_transition(campaign.id, P.ACTIVE, "charge", now)
    else:
        pledges.bulk_transition(campaign.id, P.ACTIVE, "release", now, "not funded")
        pledges.free_claims(campaign.id)
    pledges.bulk_transition(campaign.id, P.PENDING, "abandon", now, "deadline")
    db.session.commit()
    outcome = "successful" if funded else "unsuccessful"
    log.info("campaign %s decided %s: %s of %s %s from %s backers", campaign.id, outcome, total, campaign.goal, campaign.currency, backers)
    return outcome


def sweep_stopped_campaigns(summary: Summary) -> None:
    """Pledges still active on a canceled or suspended campaign (the process died between the stop
    and the release): release them now."""
    stale = db.session.scalars(
        select(Campaign).where(
            Campaign.state.in_([CampaignState.CANCELED.value, CampaignState.SUSPENDED.value]),
            Campaign.id.in_(select(Pledge.campaign_id).where(Pledge.state.in_([P.ACTIVE.value, P.PENDING.value]))),
        )
    ).all()
    for campaign in stale:
        released = pledges.release_campaign(campaign, campaigns.state_name(campaign.state))
        if released:
            summary.add(campaign.id, "released")


# --- leases ----------------------------------------------------------------------------------

def claim(where, now: datetime, batch: int) -> list[int]:
    """Lease up to `batch` pledges matching `where` for this pass; returns their ids. Commits.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent passes take different rows without waiting.
    Everywhere: the conditional UPDATE (lease free or expired) decides who holds a row.
    """
    owner = pass_name()
    # The lease runs from the claim, not from the start of the pass: a pass can outlast a lease
    # (10,000 pledges at 20 requests/s take ~25 min), and a lease born expired lets another worker
    # take pledges this pass is still charging.
    until = max(now, clock.utcnow()) + LEASE
    free = or_(Pledge.lease_until.is_(None), Pledge.lease_until < now)
    query = select(Pledge.id).where(where, free).order_by(Pledge.id).limit(batch)
    if _is_postgres():
        query = query.with_for_update(skip_locked=True)
    ids = db.session.scalars(query).all()
    if not ids:
        db.session.rollback()
        return []
    db.session.execute(
        update(Pledge).where(Pledge.id.in_(ids), where, free).values(lease_until=until, lease_owner=owner)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return list(db.session.scalars(select(Pledge.id).where(Pledge.id.in_(ids), Pledge.lease_owner == owner).order_by(Pledge.id)))


def pass_name() -> str:
    """Who holds a lease, as a person reading the log can find it: host, process id and a token (32
    characters at most: the lease_owner column)."""
    return f"{socket.gethostname()[:12]}:{os.getpid()}:{secrets.token_hex(4)}"[:32]


def held_leases(now: datetime) -> list[tuple[int, str, int, datetime]]:
    """Pledges due for a charge whose lease someone holds past `now`, per campaign and holder."""
    rows = db.session.execute(
        select(Pledge.campaign_id, Pledge.lease_owner, func.count(), func.max(Pledge.lease_until))
        .where(Pledge.state.in_([P.CHARGING.value, P.ERRORED.value]), Pledge.lease_until >= now)
        .group_by(Pledge.campaign_id, Pledge.lease_owner).order_by(Pledge.campaign_id, Pledge.lease_owner)
    ).all()
    db.session.rollback()
    return [(campaign_id, owner or "?", count, until) for campaign_id, owner, count, until in rows]


def _release_lease(pledge: Pledge, next_charge_at: datetime | None = None) -> None:
    pledge.lease_until = None
    pledge.lease_owner = None
    if next_charge_at is not None:
        pledge.next_charge_at = next_charge_at


def _touch_campaigns(pledge_ids: list[int]) -> None:
    """Move the version (`updated_at`) of the campaigns of these pledges, so that visitors' cached
    pages stop showing the collected, failed and dropped figures from before. Once per batch, as the
    last statement before its commit, not per charge. Does not commit."""
    if not pledge_ids:
        return
    db.session.execute(
        update(Campaign).where(Campaign.id.in_(select(Pledge.campaign_id).where(Pledge.id.in_(pledge_ids)).distinct()))
        .values(updated_at=clock.utcnow()).execution_options(synchronize_session=False)
    )


# --- 2 and 3. charging, failures, retries ----------------------------------------------------

def _due_for_charge(now: datetime):
    window = timedelta(days=current_app.config["PAYMENT_RETRY_DAYS"])
    return or_(
        and_(Pledge.state == P.CHARGING.value, or_(Pledge.next_charge_at.is_(None), Pledge.next_charge_at <= now)),
        and_(Pledge.state == P.ERRORED.value, Pledge.next_charge_at <= now, Pledge.failed_at > now - window),
    )


def _last_attempt(pledge_id: int) -> ChargeAttempt | None:
    return db.session.scalar(
        select(ChargeAttempt).where(ChargeAttempt.pledge_id == pledge_id).order_by(ChargeAttempt.attempt.desc()).limit(1)
    )


def _load_pledges(pledge_ids: list[int]) -> dict[int, Pledge]:
    """The pledges with their backers and campaigns, fresh from the database (a batch's pledges share
    one campaign: it is read once, not joined to every row)."""
    rows = db.session.scalars(
        select(Pledge).options(joinedload(Pledge.backer), selectinload(Pledge.campaign)).where(Pledge.id.in_(pledge_ids))
        .execution_options(populate_existing=True)
    )
    return {pledge.id: pledge for pledge in rows}


def _last_attempts(pledge_ids: list[int]) -> dict[int, ChargeAttempt]:
    """Each pledge's latest attempt, in one query."""
    latest = (select(ChargeAttempt.pledge_id, func.max(ChargeAttempt.attempt).label("n"))
              .where(ChargeAttempt.pledge_id.in_(pledge_ids)).group_by(ChargeAttempt.pledge_id).subquery())
    rows = db.session.scalars(
        select(ChargeAttempt).join(latest, and_(ChargeAttempt.pledge_id == latest.c.pledge_id, ChargeAttempt.attempt == latest.c.n))
        .execution_options(populate_existing=True)
    )
    return {attempt.pledge_id: attempt for attempt in rows}


def _make_previous_harmless(pledge: Pledge, last: ChargeAttempt | None, summary: Summary) -> bool:
    """Before a new attempt, cancel the `last` attempt's PaymentIntent if it failed, so the backer
    finishing an old authentication and this retry can never both collect. True if it turned out to
    have collected. Commits."""
    if not _needs_cancel(last):
        return False
    state = gateway.cancel_charge(last.payment_intent_id)
    collected = _settle_previous(pledge, last, state, summary)
    db.session.commit()
    return collected


def _needs_cancel(last: ChargeAttempt | None) -> bool:
    return last is not None and last.status == A.FAILED.value and bool(last.payment_intent_id)


def _settle_previous(pledge: Pledge, last: ChargeAttempt, state: gateway.ChargeState, summary: Summary) -> bool:
    if state.succeeded:
        _record(pledge, last, state, summary)
        return True
    last.status = A.CANCELED.value
    return False


@dataclass
class _Charge:
    """One leased pledge on its way through `charge_batch`: plain values, so commits expire nothing it needs."""

    pledge_id: int
    customer: str | None
    payment_method: str | None
    last: ChargeAttempt | None
    attempt_id: int | None = None
    number: int = 0
    amount: int = 0
    currency: str = ""
    intent: str | None = None
    started: datetime | None = None  # when the attempt row was made: its idempotency key lives from then
    token: str = ""  # the attempt row's token, in its key and metadata
    state: gateway.ChargeState | None = None
    error: gateway.GatewayError | None = None
    outcome: str | None = None  # set once the pledge needs nothing more from this batch


def _stripe_calls(concurrency: int):
    """A map over Stripe requests: in a few threads (they never touch the database), or in this one
    when `concurrency` is 1. A GatewayError is returned, not raised."""
    app = current_app._get_current_object()

    def guarded(fn, item):
        try:
            return fn(item)
        except gateway.GatewayError as error:
            return error

    if concurrency <= 1:
        return lambda fn, items: [guarded(fn, item) for item in items]
    # Each thread enters the app's context once, for its whole life (the gateway reads the settings).
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="settle", initializer=lambda: app.app_context().push())

    def run(fn, items):
        return list(pool.map(lambda item: guarded(fn, item), items))

    run.pool = pool
    return run


def _charge_once(charge: _Charge) -> gateway.ChargeState:
    """Stripe's answer for the charge's attempt: one request, unless recovering.

    - a PaymentIntent id saved (one still `processing`, or left unconfirmed by the earlier two-step
      design): read it, and confirm it only if Stripe says it still waits for that;
    - none saved, the key still alive (younger than RESEND_WITHIN): the charge request, the same as the
      first one with the same key; if it was sent before and its answer lost, Stripe replays that answer
      (the same PaymentIntent) instead of charging again;
    - none saved and the key perhaps forgotten, or Stripe says the key went with other parameters (the
      backer changed cards meanwhile): look the attempt's PaymentIntent up among the customer's own by
      our metadata; only when there is none, charge (a first charge for this attempt).
    Runs in a worker thread: no database here."""
    if charge.intent:
        state = gateway.read_charge(charge.intent)
        return gateway.confirm_charge(charge.intent) if state.needs_confirmation else state
    args = (charge.pledge_id, charge.number, charge.token, charge.amount, charge.currency, charge.customer, charge.payment_method)
    key_alive = clock.utcnow() - charge.started < RESEND_WITHIN
    if key_alive:
        try:
            return gateway.charge(*args)
        except gateway.IdempotencyConflict:
            log.warning("pledge %s attempt %s: key used with other parameters; looking its PaymentIntent up",
                        charge.pledge_id, charge.number)
    found = gateway.find_charge(charge.customer, charge.pledge_id, charge.number, charge.token)
    if found is not None:
        return found
    if key_alive:  # the key did something else at Stripe, yet no PaymentIntent names the attempt
        raise gateway.IdempotencyConflict(code="idempotency_error", detail=gateway.charge_key(charge.pledge_id, charge.number, charge.token))
    return gateway.charge(*args)


def charge_batch(pledge_ids: list[int], owners: dict[int, str | None], summary: Summary, now: datetime,
                 calls=None) -> dict[int, str]:
    """Charge a batch of leased pledges, docs/money-path.md's steps taken a batch at a time: the attempt
    rows are committed together before Stripe hears of them, then one request per charge (several side
    by side), then every outcome in one commit. A kill between any two steps leaves each pledge at one
    of the recovery points `_charge_once` finishes. Returns each pledge's outcome."""
    calls = calls or _stripe_calls(1)
    loaded = _load_pledges(pledge_ids)
    lasts = _last_attempts(list(loaded))
    charges = [
        _Charge(pid, pledge.backer.stripe_customer_id, pledge.payment_method_id, lasts.get(pid))
        for pid in pledge_ids
        if (pledge := loaded.get(pid)) is not None and pledge.state in (P.CHARGING.value, P.ERRORED.value)
        and (owners.get(pid) is None or pledge.lease_owner == owners[pid])  # else someone else holds it now
    ]

    def pending() -> list[_Charge]:
        return [c for c in charges if c.outcome is None and c.error is None]

    # 0. A failed previous attempt: cancel its PaymentIntent first (it may turn out to have collected).
    previous = [c for c in charges if _needs_cancel(c.last)]
    for charge, result in zip(previous, calls(lambda c: gateway.cancel_charge(c.last.payment_intent_id), previous), strict=True):
        if isinstance(result, gateway.GatewayError):
            charge.error = result
        elif _settle_previous(loaded[charge.pledge_id], charge.last, result, summary):
            charge.outcome = "collected"
    # 1. The attempt to work on: the open one, or a new row, committed before Stripe hears of it.
    fresh = []
    for charge in pending():
        attempt = charge.last
        if attempt is None or attempt.status != A.OPEN.value:
            pledge = loaded[charge.pledge_id]
            attempt = ChargeAttempt(pledge_id=charge.pledge_id, attempt=(attempt.attempt + 1) if attempt else 1,
                                    amount=pledge.amount, currency=pledge.currency, status=A.OPEN.value, created_at=clock.utcnow())
            db.session.add(attempt)
            fresh.append((charge, attempt))
        else:
            charge.attempt_id, charge.intent = attempt.id, attempt.payment_intent_id
        charge.number, charge.amount, charge.currency = attempt.attempt, attempt.amount, attempt.currency
        charge.started = attempt.created_at
        charge.token = attempt.token or gateway.attempt_stamp(attempt.created_at)
    db.session.flush()
    for charge, attempt in fresh:
        charge.attempt_id, charge.token = attempt.id, attempt.token  # the token is made by the flush
    db.session.commit()
    # 2. One request per charge, under the attempt's key (docs/money-path.md), several at once.
    todo = pending()
    for charge, result in zip(todo, calls(_charge_once, todo), strict=True):
        if isinstance(result, gateway.GatewayError):
            charge.error = result
        else:
            charge.state = result
    # 3. Every outcome in one transaction: PaymentIntent id, attempt, pledge state, audit row, mail.
    loaded = _load_pledges([c.pledge_id for c in charges])
    attempts = {a.id: a for a in db.session.scalars(select(ChargeAttempt).where(
        ChargeAttempt.id.in_([c.attempt_id for c in charges if c.state is not None])))}
    outcomes: dict[int, str] = {}
    with mail.mail_batch():
        _record_batch(charges, loaded, attempts, outcomes, summary, now)
    _touch_campaigns([c.pledge_id for c in charges])
    db.session.commit()
    return outcomes


def _record_batch(charges: list[_Charge], loaded: dict[int, Pledge], attempts: dict[int, ChargeAttempt],
                  outcomes: dict[int, str], summary: Summary, now: datetime) -> None:
    for charge in charges:
        pledge = loaded[charge.pledge_id]
        if charge.error is not None:
            # Unknown outcome (Stripe unreachable) or a refusal: leave the attempt as it is; the next
            # pass reads the PaymentIntent again. Give the lease back so that it can.
            _release_lease(pledge, now + LOOK_AGAIN)
            with logs.request_id_of(pledge.request_id):
                log.warning("pledge %s: charge postponed: %s (%s)", charge.pledge_id, charge.error.code,
                            charge.error.detail or charge.error)
            summary.add(pledge.campaign_id, "postponed")
            outcomes[charge.pledge_id] = "postponed"
        elif charge.state is not None:
            attempt = attempts[charge.attempt_id]
            attempt.payment_intent_id = attempt.payment_intent_id or charge.state.id
            outcomes[charge.pledge_id] = _record(pledge, attempt, charge.state, summary)
        elif charge.outcome:
            outcomes[charge.pledge_id] = charge.outcome


def charge_pledge(pledge_id: int, owner: str | None, summary: Summary, now: datetime | None = None) -> str | None:
    """One charge attempt for a leased pledge (a batch of one); returns the outcome."""
    return charge_batch([pledge_id], {pledge_id: owner}, summary, now or clock.utcnow()).get(pledge_id)


def _record(pledge: Pledge, attempt: ChargeAttempt, state: gateway.ChargeState, summary: Summary) -> str:
    """The outcome of an attempt: attempt, pledge state, audit row, mail. The caller commits."""
    now = clock.utcnow()
    campaign = pledge.campaign
    if state.succeeded:
        attempt.status = A.SUCCEEDED.value
        attempt.fee_amount, attempt.charge_id, attempt.finished_at = state.fee_amount, state.charge_id, now
        attempt.amount = state.amount
        pledges.transition(pledge, "collect", None, f"{state.id}")
        pledge.collected_at = now
        _release_lease(pledge, None)
        pledge.next_charge_at = None
        mail.queue_mail(pledge.backer, _l("Your pledge to “%(title)s” was collected", title=campaign.title), "pledge_collected",
                        pledge=pledge, campaign=campaign)
        outcome = "collected"
    elif state.failed:
        attempt.status = A.FAILED.value
        attempt.decline_code, attempt.error_message, attempt.finished_at = state.decline_code, state.error_message, now
        first = pledge.failed_at is None
        pledges.transition(pledge, "fail", None, f"{state.id}: {state.decline_code or ''}")
        pledge.failed_at = pledge.failed_at or now
        _release_lease(pledge, now + RETRY_EVERY)
        if first:
            deadline = pledge.failed_at + timedelta(days=current_app.config["PAYMENT_RETRY_DAYS"])
            mail.queue_mail(pledge.backer, _l("Action needed: your pledge to “%(title)s” could not be collected", title=campaign.title),
                            "pledge_errored", pledge=pledge, campaign=campaign, needs_action=state.needs_action,
                            reason=declines.lazy_message_for(state.decline_code), deadline=deadline)
        outcome = "errored"
    else:  # processing: look again later
        _release_lease(pledge, now + LOOK_AGAIN)
        outcome = "processing"
    with logs.request_id_of(pledge.request_id):
        log.info("campaign %s pledge %s attempt %s %s: %s %s %s", campaign.id, pledge.id, attempt.attempt, state.id, outcome,
                 state.amount, state.currency)
    summary.add(campaign.id, outcome)
    return outcome


def drop_expired(summary: Summary, now: datetime, batch: int) -> None:
    """Errored pledges whose retry window is over become dropped; their tier places are freed."""
    window = timedelta(days=current_app.config["PAYMENT_RETRY_DAYS"])
    where = and_(Pledge.state == P.ERRORED.value, Pledge.failed_at <= now - window)
    while ids := claim(where, now, batch):
        for pledge_id in ids:
            pledge = db.session.get(Pledge, pledge_id, populate_existing=True)
            try:
                if _make_previous_harmless(pledge, _last_attempt(pledge_id), summary):
                    continue
            except gateway.GatewayError as error:
                db.session.rollback()
                _release_lease(db.session.get(Pledge, pledge_id), now + LOOK_AGAIN)
                db.session.commit()
                with logs.request_id_of(pledge.request_id):
                    log.warning("pledge %s: drop postponed: %s", pledge_id, error)
                continue
            pledges.transition(pledge, "drop", None, "retry window over")
            pledges.release_claims(pledge)
            _release_lease(pledge, None)
            pledge.next_charge_at = None
            mail.queue_mail(pledge.backer, _l("Your pledge to “%(title)s” was dropped", title=pledge.campaign.title), "pledge_dropped",
                            pledge=pledge, campaign=pledge.campaign)
            db.session.commit()
            with logs.request_id_of(pledge.request_id):
                log.info("pledge %s: dropped, its retry window over", pledge_id)
            summary.add(pledge.campaign_id, "dropped")
        _touch_campaigns(ids)
        db.session.commit()


def charge_due(summary: Summary, now: datetime, batch: int, concurrency: int) -> None:
    """Charge every pledge due, a leased batch at a time, `concurrency` Stripe requests in flight."""
    calls = _stripe_calls(concurrency)
    try:
        while ids := claim(_due_for_charge(now), now, batch):
            owners = dict(db.session.execute(select(Pledge.id, Pledge.lease_owner).where(Pledge.id.in_(ids))).all())
            db.session.rollback()
            charge_batch(ids, owners, summary, now, calls)
    finally:
        if hasattr(calls, "pool"):
            calls.pool.shutdown()


def release_cards(summary: Summary, now: datetime, batch: int) -> None:
    """Release at Stripe the saved cards of pledges that will never be charged."""
    where = and_(Pledge.state.in_([P.RELEASED.value, P.DROPPED.value, P.CANCELED.value]),
                 Pledge.payment_method_id.is_not(None), Pledge.card_released_at.is_(None))
    while ids := claim(where, now, batch):
        for pledge_id in ids:
            pledge = db.session.get(Pledge, pledge_id, populate_existing=True)
            try:
                gateway.release_card(pledge.payment_method_id)
            except gateway.GatewayError as error:
                with logs.request_id_of(pledge.request_id):
                    log.warning("pledge %s: card release postponed: %s", pledge_id, error)
                _release_lease(pledge)
                pledge.card_released_at = None
                db.session.commit()
                return  # Stripe is struggling: the next pass tries again
            pledge.card_released_at = clock.utcnow()
            _release_lease(pledge)
            db.session.commit()
            with logs.request_id_of(pledge.request_id):
                log.info("pledge %s: saved card released (pledge %s)", pledge_id, pledge.state)
            summary.cards_released += 1


# --- the pass --------------------------------------------------------------------------------

def run_pass(now: datetime | None = None, *, batch: int | None = None, concurrency: int | None = None,
             progress: Callable[[str], None] | None = None) -> Summary:
    """One settlement pass; safe to run again and (on PostgreSQL) in several processes at once."""
    config = current_app.config
    batch = batch or config.get("SETTLE_BATCH_SIZE", 50)
    if concurrency is None:
        concurrency = config.get("SETTLE_CONCURRENCY", 8)
    now = now or clock.utcnow()
    summary = Summary()
    decide_due_campaigns(summary, now)
    sweep_stopped_campaigns(summary)
    drop_expired(summary, now, batch)
    charge_due(summary, now, batch, concurrency)
    release_cards(summary, now, batch)
    summary.held = held_leases(now)
    for line in summary.lines():
        log.info("settle: %s", line)
        if progress:
            progress(line)
    return summary


# --- the backer fixes a failed payment -------------------------------------------------------

def authentication_secret(pledge: Pledge) -> str | None:
    """The client secret to authenticate the last failed charge in the browser, when the bank asked."""
    last = _last_attempt(pledge.id)
    if pledge.state != P.ERRORED.value or last is None or last.status != A.FAILED.value or last.decline_code != "authentication_required":
        return None
    return gateway.charge_client_secret(last.payment_intent_id)


def last_failure(pledge: Pledge) -> ChargeAttempt | None:
    last = _last_attempt(pledge.id)
    return last if last is not None and last.status in (A.FAILED.value, A.CANCELED.value) else None


def record_from_stripe(payment_intent_id: str) -> str | None:
    """Stripe says something happened to one of our PaymentIntents (the backer authenticated, or a
    webhook): read its state from Stripe and record it if it collected. Never trusts the caller."""
    attempt = db.session.scalar(select(ChargeAttempt).where(ChargeAttempt.payment_intent_id == payment_intent_id))
    if attempt is None:
        return None
    pledge = attempt.pledge
    if pledge.state not in (P.CHARGING.value, P.ERRORED.value) or attempt.status == A.SUCCEEDED.value:
        return pledge.state
    state = gateway.read_charge(payment_intent_id)
    if not state.succeeded:
        return pledge.state
    # Take the pledge's lease first, so a pass working on it meanwhile cannot record twice.
    now = clock.utcnow()
    taken = db.session.execute(
        update(Pledge).where(Pledge.id == pledge.id, Pledge.state.in_([P.CHARGING.value, P.ERRORED.value]),
                             or_(Pledge.lease_until.is_(None), Pledge.lease_until < now))
        .values(lease_until=now + LEASE, lease_owner="backer").execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not taken:
        return pledge.state
    db.session.refresh(pledge)
    db.session.refresh(attempt)
    outcome = _record(pledge, attempt, state, Summary())
    _touch_campaigns([pledge.id])
    db.session.commit()
    return outcome


def retry_now(pledge: Pledge) -> str | None:
    """Charge an errored pledge at once (the backer gave a new card), under a lease like a pass."""
    now = clock.utcnow()
    window = timedelta(days=current_app.config["PAYMENT_RETRY_DAYS"])
    owner = secrets.token_hex(8)
    taken = db.session.execute(
        update(Pledge).where(Pledge.id == pledge.id, Pledge.state == P.ERRORED.value, Pledge.failed_at > now - window,
                             or_(Pledge.lease_until.is_(None), Pledge.lease_until < now))
        .values(lease_until=now + LEASE, lease_owner=owner).execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not taken:
        return None
    return charge_pledge(pledge.id, owner, Summary(), now)


