"""The operators' figures (the moderators' operations page) and the public stats page.

Every figure is read in a fixed number of grouped statements, whatever the number of campaigns,
pledges or charges: the database sums and counts; Python only fills in the weeks that had nothing
and divides. Money is summed per currency and never across currencies.

A period is the last N weeks, Monday 00:00 UTC to Monday, this week included. What falls in it:
- pledged: pledges that became active in the week (their amount now; canceled ones included: they
  were pledged), by activation week; average pledge: the same pledges' mean;
- collected: charge attempts that succeeded in the week;
- campaigns submitted / approved / launched / funded: the audit rows (`campaign_events`) of those
  moves in the week — a campaign submitted again after changes counts again;
- success rate (by category, by goal size): campaigns that ended in the period — funded ÷ ended,
  where ended is funded, not funded or canceled (live and suspended campaigns are not counted);
- time to review: each decision (approve, request changes, reject) in the period, from the latest
  submission before it; the median;
- repeat backers: among the backers whose pledges became active in the period, those who backed two
  or more campaigns in it, and their share of those backers;
- charge failures: pledges whose first charge was attempted in the period; failed first: one of
  their attempts failed; recovered: of those, the ones collected later (a retry or a new card);
- refunds: pledges refunded in the period, count and amount; reports: made in the period, and of
  those, how many are still open.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import DateTime, and_, case, func, literal, select
from sqlalchemy.sql.expression import ColumnElement

from app import clock, money
from app.campaigns.models import Campaign, CampaignEvent, CampaignState
from app.campaigns.services import DECISIONS
from app.community.report_models import CampaignReport
from app.extensions import db
from app.pledges.models import Pledge, PledgeEvent
from app.settlement.models import AttemptStatus, ChargeAttempt
from app.sqltime import seconds_between

S = CampaignState
#: The periods offered, in weeks; the page opens on the first default.
PERIODS: tuple[int, ...] = (4, 12, 26, 52)
DEFAULT_WEEKS = 12
WEEK = timedelta(weeks=1)
#: Campaigns that count in a success rate: public and ended. Live ones have not ended; suspended
#: ones were stopped by us, not by their backers.
ENDED = (S.SUCCESSFUL.value, S.UNSUCCESSFUL.value, S.CANCELED.value)
#: Goal sizes, by the goal in major units of its currency: the lower bound of each bucket.
GOAL_BUCKETS: tuple[int, ...] = (0, 1_000, 10_000, 100_000)
#: The campaign moves the funnel counts, in its order.
FUNNEL = ("submit", "approve", "launch", "succeed")
#: Repeat backers are counted by campaigns backed: 1, 2, 3, 4, and this many or more.
MOST_CAMPAIGNS = 5


# --- the period ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """The last `weeks` weeks: `start` is a Monday 00:00 UTC, `end` the Monday after this week."""

    weeks: int
    start: datetime

    @property
    def end(self) -> datetime:
        return self.start + self.weeks * WEEK

    @property
    def week_starts(self) -> list[datetime]:
        return [self.start + i * WEEK for i in range(self.weeks)]

    def week(self, column) -> ColumnElement[int]:
        """The week of a timestamp in the period: 0 for the first, weeks - 1 for this one."""
        return seconds_between(column, literal(self.start, DateTime)) // int(WEEK.total_seconds())

    def holds(self, column) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)


def period(weeks: int = DEFAULT_WEEKS, now: datetime | None = None) -> Period:
    """The period of `weeks` weeks ending with the week of `now` (default: the clock's now)."""
    if weeks not in PERIODS:
        raise ValueError(f"weeks must be one of {PERIODS}")
    now = now or clock.utcnow()
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return Period(weeks, monday - (weeks - 1) * WEEK)


def _by_week(period: Period, rows) -> list[int]:
    """A value for every week of the period from (week, value) rows (missing weeks: 0)."""
    values = [0] * period.weeks
    for week, value in rows:
        if week is not None and 0 <= int(week) < period.weeks:
            values[int(week)] = int(value or 0)
    return values


def rate(part: int, whole: int) -> int | None:
    """A whole percentage, None when there is nothing to divide by."""
    return None if not whole else round(100 * part / whole)


# --- money by week ---------------------------------------------------------------------------

@dataclass
class MoneyWeeks:
    """One currency's pledged and collected amounts (minor units) and pledge counts, per week."""

    currency: str
    pledged: list[int]
    pledges: list[int]
    collected: list[int]

    @property
    def pledged_total(self) -> int:
        return sum(self.pledged)

    @property
    def collected_total(self) -> int:
        return sum(self.collected)

    @property
    def pledge_count(self) -> int:
        return sum(self.pledges)

    @property
    def average_pledge(self) -> int | None:
        """The mean pledge in minor units (rounded half up), None without pledges."""
        return (2 * self.pledged_total + self.pledge_count) // (2 * self.pledge_count) if self.pledge_count else None

    @property
    def weekly_average(self) -> list[int]:
        return [(2 * total + n) // (2 * n) if n else 0 for total, n in zip(self.pledged, self.pledges, strict=True)]


def money_by_week(period: Period) -> list[MoneyWeeks]:
    """Pledged (by activation week) and collected (by charge week), per currency. Two statements."""
    week = period.week(Pledge.activated_at)
    pledged = db.session.execute(
        select(Pledge.currency, week, func.sum(Pledge.amount), func.count())
        .where(period.holds(Pledge.activated_at)).group_by(Pledge.currency, week)
    ).all()
    charged_week = period.week(ChargeAttempt.finished_at)
    collected = db.session.execute(
        select(ChargeAttempt.currency, charged_week, func.sum(ChargeAttempt.amount))
        .where(ChargeAttempt.status == AttemptStatus.SUCCEEDED.value, period.holds(ChargeAttempt.finished_at))
        .group_by(ChargeAttempt.currency, charged_week)
    ).all()
    currencies = sorted({row[0] for row in pledged} | {row[0] for row in collected})
    return [
        MoneyWeeks(
            currency,
            pledged=_by_week(period, ((w, total) for c, w, total, _n in pledged if c == currency)),
            pledges=_by_week(period, ((w, n) for c, w, _total, n in pledged if c == currency)),
            collected=_by_week(period, ((w, total) for c, w, total in collected if c == currency)),
        )
        for currency in currencies
    ]


# --- campaigns -------------------------------------------------------------------------------

def funnel(period: Period) -> dict[str, list[int]]:
    """Campaigns submitted, approved, launched and funded per week (their audit rows). One statement."""
    week = period.week(CampaignEvent.created_at)
    rows = db.session.execute(
        select(CampaignEvent.action, week, func.count())
        .where(CampaignEvent.action.in_(FUNNEL), period.holds(CampaignEvent.created_at))
        .group_by(CampaignEvent.action, week)
    ).all()
    return {action: _by_week(period, ((w, n) for a, w, n in rows if a == action)) for action in FUNNEL}


@dataclass
class Outcome:
    """Campaigns that ended, and those of them funded."""

    ended: int = 0
    funded: int = 0

    @property
    def rate(self) -> int | None:
        return rate(self.funded, self.ended)


@dataclass
class Outcomes:
    """Launched public campaigns by state, category, currency and goal size, with what was pledged."""

    #: (category, currency, goal bucket, state) -> (campaigns, pledged in minor units)
    rows: dict[tuple[str, str, int, str], tuple[int, int]] = field(default_factory=dict)

    def _sum(self, key, states=ENDED) -> dict:
        outcomes: dict = defaultdict(Outcome)
        for (category, currency, bucket, state), (n, _pledged) in self.rows.items():
            if state in states:
                outcome = outcomes[key(category, currency, bucket)]
                outcome.ended += n
                outcome.funded += n if state == S.SUCCESSFUL.value else 0
        return outcomes

    @property
    def overall(self) -> Outcome:
        return self._sum(lambda *_: None).get(None, Outcome())

    @property
    def by_category(self) -> list[tuple[str, Outcome]]:
        """Categories with an ended campaign, the highest success rate first."""
        found = self._sum(lambda category, _c, _b: category)
        return sorted(found.items(), key=lambda item: (-(item[1].rate or 0), item[0]))

    @property
    def by_goal(self) -> list[tuple[tuple[str, int], Outcome]]:
        """((currency, bucket index), outcome) for the goal sizes with an ended campaign."""
        return sorted(self._sum(lambda _category, currency, bucket: (currency, bucket)).items())

    def count(self, *states: str) -> int:
        return sum(n for (_c, _cur, _b, state), (n, _p) in self.rows.items() if state in states)

    def pledged(self, *states: str) -> dict[str, int]:
        """What was pledged to campaigns in `states`, per currency."""
        totals: dict[str, int] = defaultdict(int)
        for (_category, currency, _bucket, state), (_n, pledged) in self.rows.items():
            if state in states:
                totals[currency] += pledged
        return dict(sorted(totals.items()))


def goal_bucket_bounds(currency: str, bucket: int) -> tuple[int, int | None]:
    """A goal bucket's bounds in minor units of `currency`: (lowest, next bucket's lowest or None)."""
    unit = 10 ** money.exponent(currency)
    upper = GOAL_BUCKETS[bucket + 1] * unit if bucket + 1 < len(GOAL_BUCKETS) else None
    return GOAL_BUCKETS[bucket] * unit, upper


def outcomes(period: Period | None = None) -> Outcomes:
    """Public launched campaigns grouped by category, currency, goal size and state, with what was
    pledged to them (their total at the end, or now when live). With a period: only the campaigns that
    ended in it. One statement."""
    major_goal = case(*((Campaign.currency == code, Campaign.goal // 10**digits) for code, digits in money.EXPONENTS.items()),
                      else_=Campaign.goal)
    bucket = case(*((major_goal < bound, i - 1) for i, bound in enumerate(GOAL_BUCKETS) if i), else_=len(GOAL_BUCKETS) - 1)
    query = (
        select(Campaign.category, Campaign.currency, bucket, Campaign.state, func.count(),
               func.sum(func.coalesce(Campaign.pledged_at_deadline, Campaign.pledged_total)))
        .where(Campaign.state.in_([state.value for state in (S.LIVE, S.SUCCESSFUL, S.UNSUCCESSFUL, S.CANCELED)]))
        .group_by(Campaign.category, Campaign.currency, bucket, Campaign.state)
    )
    if period is not None:
        query = query.where(period.holds(Campaign.ended_at))
    return Outcomes({(category, currency, int(b), state): (int(n), int(pledged or 0))
                     for category, currency, b, state, n, pledged in db.session.execute(query)})


# --- time to review --------------------------------------------------------------------------

@dataclass
class ReviewTimes:
    """Median seconds from submission to decision: over the period, and per week (0: none)."""

    median: float | None
    decisions: int
    weekly: list[float]


def review_times(period: Period) -> ReviewTimes:
    """Each decision in the period, timed from the latest submission before it; medians overall and
    per week, computed in the database (window functions). Two statements."""
    # Each submission or decision up to the period's end, with the latest submission up to it (a
    # running maximum over the campaign's rows: one pass, no lookup per decision).
    e = CampaignEvent
    events = (
        select(e.action, e.created_at, func.max(case((e.action == "submit", e.created_at))).over(
            partition_by=e.campaign_id, order_by=(e.created_at, e.id), rows=(None, 0)).label("submitted_at"))
        .where(e.action.in_(("submit", *DECISIONS)), e.created_at < period.end)
        .subquery()
    )
    reviews = (
        select(period.week(events.c.created_at).label("week"),
               seconds_between(events.c.created_at, events.c.submitted_at).label("seconds"))
        .where(events.c.action.in_(DECISIONS), period.holds(events.c.created_at), events.c.submitted_at.is_not(None))
        .subquery()
    )

    def medians(*partition):
        ranked = select(
            *partition, reviews.c.seconds,
            func.row_number().over(partition_by=partition or None, order_by=reviews.c.seconds).label("rn"),
            func.count().over(partition_by=partition or None).label("n"),
        ).subquery()
        by = [ranked.c[column.name] for column in partition]
        # The middle row, or the two middle rows' mean when the count is even.
        return db.session.execute(
            select(*by, func.avg(ranked.c.seconds), func.max(ranked.c.n))
            .where(ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2]))
            .group_by(*by)
        ).all()

    overall = medians()
    weekly = [0.0] * period.weeks
    for week, median, _n in medians(reviews.c.week):
        if 0 <= int(week) < period.weeks:
            weekly[int(week)] = float(median)
    median, count = (float(overall[0][0]), int(overall[0][1])) if overall and overall[0][0] is not None else (None, 0)
    return ReviewTimes(median, count, weekly)


# --- backers ---------------------------------------------------------------------------------

@dataclass
class RepeatBackers:
    """Backers by the number of campaigns they backed in the period (the last: this many or more)."""

    by_campaigns: dict[int, int]

    @property
    def backers(self) -> int:
        return sum(self.by_campaigns.values())

    @property
    def repeat(self) -> int:
        return sum(n for campaigns, n in self.by_campaigns.items() if campaigns >= 2)

    @property
    def share(self) -> int | None:
        return rate(self.repeat, self.backers)


def repeat_backers(period: Period) -> RepeatBackers:
    """Backers whose pledges became active in the period, by the campaigns they backed. One statement."""
    backed = (  # each (backer, campaign) once: a GROUP BY, cheaper than COUNT(DISTINCT) per backer
        select(Pledge.backer_id).where(period.holds(Pledge.activated_at)).group_by(Pledge.backer_id, Pledge.campaign_id).subquery()
    )
    per_backer = select(backed.c.backer_id, func.count().label("campaigns")).group_by(backed.c.backer_id).subquery()
    capped = case((per_backer.c.campaigns >= MOST_CAMPAIGNS, MOST_CAMPAIGNS), else_=per_backer.c.campaigns)
    found = dict(db.session.execute(select(capped, func.count()).group_by(capped)).all())
    return RepeatBackers({n: int(found.get(n, 0)) for n in range(1, MOST_CAMPAIGNS + 1)})


# --- charges ---------------------------------------------------------------------------------

@dataclass
class Charges:
    """Pledges charged for the first time in each week: how many, how many failed first, how many of
    those were collected later."""

    charged: list[int]
    failed: list[int]
    recovered: list[int]

    @property
    def failure_rate(self) -> int | None:
        return rate(sum(self.failed), sum(self.charged))

    @property
    def recovery_rate(self) -> int | None:
        return rate(sum(self.recovered), sum(self.failed))

    def weekly_rates(self) -> tuple[list[int], list[int]]:
        """Failure and recovery rates per week (0 where there was nothing to divide)."""
        return ([rate(f, c) or 0 for f, c in zip(self.failed, self.charged, strict=True)],
                [rate(r, f) or 0 for r, f in zip(self.recovered, self.failed, strict=True)])


def charges(period: Period) -> Charges:
    """Charge outcomes per pledge (its decided attempts), grouped by the week of its first attempt. One statement."""
    failed = func.max(case((ChargeAttempt.status == AttemptStatus.FAILED.value, 1), else_=0))
    succeeded = func.max(case((ChargeAttempt.status == AttemptStatus.SUCCEEDED.value, 1), else_=0))
    first = func.min(ChargeAttempt.created_at)
    per_pledge = (
        select(first.label("first"), failed.label("failed"), succeeded.label("succeeded"))
        .where(ChargeAttempt.status.in_([AttemptStatus.FAILED.value, AttemptStatus.SUCCEEDED.value]))
        .group_by(ChargeAttempt.pledge_id)
        .having(period.holds(first))
        .subquery()
    )
    week = period.week(per_pledge.c.first)
    rows = db.session.execute(
        select(week, func.count(), func.sum(per_pledge.c.failed), func.sum(per_pledge.c.failed * per_pledge.c.succeeded))
        .group_by(week)
    ).all()
    return Charges(
        charged=_by_week(period, ((w, n) for w, n, _f, _r in rows)),
        failed=_by_week(period, ((w, f) for w, _n, f, _r in rows)),
        recovered=_by_week(period, ((w, r) for w, _n, _f, r in rows)),
    )


# --- refunds and reports ---------------------------------------------------------------------

@dataclass
class Refunds:
    """Refunds per week of one currency: count and amount (minor units)."""

    currency: str
    count: list[int]
    amount: list[int]


def refunds(period: Period) -> list[Refunds]:
    """Pledges refunded in the period (their audit rows), per currency and week. One statement."""
    week = period.week(PledgeEvent.created_at)
    rows = db.session.execute(
        select(Pledge.currency, week, func.count(), func.sum(PledgeEvent.amount))
        .join(Pledge, Pledge.id == PledgeEvent.pledge_id)
        .where(PledgeEvent.action == "refund", period.holds(PledgeEvent.created_at))
        .group_by(Pledge.currency, week)
    ).all()
    return [
        Refunds(currency, _by_week(period, ((w, n) for c, w, n, _a in rows if c == currency)),
                _by_week(period, ((w, a) for c, w, _n, a in rows if c == currency)))
        for currency in sorted({row[0] for row in rows})
    ]


@dataclass
class Reports:
    """Reports made per week, and of those the ones still open."""

    made: list[int]
    still_open: list[int]

    @property
    def closed(self) -> int:
        return sum(self.made) - sum(self.still_open)


def reports(period: Period) -> Reports:
    """Reports made in the period, per week, with how many are still open. One statement."""
    week = period.week(CampaignReport.created_at)
    rows = db.session.execute(
        select(week, func.count(), func.sum(case((CampaignReport.resolved_at.is_(None), 1), else_=0)))
        .where(period.holds(CampaignReport.created_at)).group_by(week)
    ).all()
    return Reports(_by_week(period, ((w, n) for w, n, _o in rows)), _by_week(period, ((w, o) for w, _n, o in rows)))


# --- the pages -------------------------------------------------------------------------------

@dataclass
class OperationsFigures:
    """Everything the operations page shows, for one period."""

    period: Period
    money: list[MoneyWeeks]
    funnel: dict[str, list[int]]
    outcomes: Outcomes
    review: ReviewTimes
    repeat: RepeatBackers
    charges: Charges
    refunds: list[Refunds]
    reports: Reports


#: The statements `operations()` runs, whatever the data (tests/test_operations.py holds it to this).
STATEMENTS = 10


def operations(weeks: int = DEFAULT_WEEKS) -> OperationsFigures:
    """The moderators' figures for the last `weeks` weeks, in STATEMENTS statements."""
    p = period(weeks)
    return OperationsFigures(p, money_by_week(p), funnel(p), outcomes(p), review_times(p), repeat_backers(p),
                             charges(p), refunds(p), reports(p))


@dataclass
class PublicStats:
    """The public stats page: campaigns launched and funded, what was pledged, success rates."""

    outcomes: Outcomes

    @property
    def launched(self) -> int:
        return self.outcomes.count(S.LIVE.value, *ENDED)

    @property
    def live(self) -> int:
        return self.outcomes.count(S.LIVE.value)

    @property
    def funded(self) -> int:
        return self.outcomes.count(S.SUCCESSFUL.value)

    @property
    def pledged(self) -> dict[str, int]:
        return self.outcomes.pledged(S.LIVE.value, *ENDED)

    @property
    def pledged_to_funded(self) -> dict[str, int]:
        return self.outcomes.pledged(S.SUCCESSFUL.value)


def public_stats() -> PublicStats:
    """Figures anyone may see (public campaigns' counts and totals; nothing about a backer). One statement."""
    return PublicStats(outcomes())
