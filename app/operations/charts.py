"""The operations and stats pages' charts: each figure of `figures.py` drawn with `app.charts`, labelled
in the reader's language with the figure it shows (the pages also give every value as text)."""
from __future__ import annotations

from datetime import timedelta

from flask_babel import format_date, format_timedelta, ngettext
from flask_babel import gettext as _
from markupsafe import Markup

from app import charts, money
from app.i18n import percent_filter
from app.operations.figures import (
    MOST_CAMPAIGNS,
    Charges,
    MoneyWeeks,
    Outcomes,
    Period,
    Refunds,
    RepeatBackers,
    Reports,
    ReviewTimes,
    goal_bucket_bounds,
)


def _weeks(period: Period) -> list[str]:
    return [format_date(start.date(), "medium") for start in period.week_starts]


def _money(currency: str):
    return lambda amount: money.format_money(int(amount), currency, whole=True)


def _count(value: float) -> str:
    return str(round(value))


def duration(seconds: float) -> str:
    """Seconds as people say them ("3 hours", "2 jours", "0 minutes")."""
    return format_timedelta(timedelta(seconds=seconds), threshold=1.5, granularity="minute")


def durations(seconds: list[float]) -> list[str]:
    return [duration(value) for value in seconds]


def money_chart(period: Period, weeks: MoneyWeeks) -> Markup:
    fmt = _money(weeks.currency)
    return charts.line_chart(
        _("Pledged and collected by week in %(currency)s: %(pledged)s pledged, %(collected)s collected",
          currency=weeks.currency, pledged=fmt(weeks.pledged_total), collected=fmt(weeks.collected_total)),
        _weeks(period), [(_("Pledged"), weeks.pledged), (_("Collected"), weeks.collected)], fmt)


def average_chart(period: Period, weeks: MoneyWeeks) -> Markup:
    fmt = _money(weeks.currency)
    return charts.line_chart(
        _("Average pledge by week in %(currency)s: %(average)s over the period",
          currency=weeks.currency, average=fmt(weeks.average_pledge or 0)),
        _weeks(period), [(_("Average pledge"), weeks.weekly_average)], fmt)


def funnel_names() -> dict[str, str]:
    return {"submit": _("Submitted"), "approve": _("Approved"), "launch": _("Launched"), "succeed": _("Funded")}


def funnel_chart(period: Period, funnel: dict[str, list[int]]) -> Markup:
    names = funnel_names()
    return charts.line_chart(
        _("Campaigns by week: %(submitted)d submitted, %(approved)d approved, %(launched)d launched, %(funded)d funded",
          submitted=sum(funnel["submit"]), approved=sum(funnel["approve"]), launched=sum(funnel["launch"]),
          funded=sum(funnel["succeed"])),
        _weeks(period), [(names[action], values) for action, values in funnel.items()], _count)


def category_chart(outcomes: Outcomes, category_names: dict[str, str]) -> Markup:
    rows = [(category_names.get(category, category), outcome.rate or 0, percent_filter(outcome.rate))
            for category, outcome in outcomes.by_category]
    return charts.bar_chart(
        _("Success rate by category: %(rate)s overall", rate=percent_filter(outcomes.overall.rate)), rows, top=100)


def goal_name(size: tuple[str, int]) -> str:
    """A goal size, (currency, bucket), in words: "under $1,000", "$1,000 to $10,000", "$100,000 or more"."""
    currency, _bucket = size
    low, high = goal_bucket_bounds(*size)
    fmt = _money(currency)
    if not low:
        return _("under %(amount)s", amount=fmt(high))
    if high is None:
        return _("%(amount)s or more", amount=fmt(low))
    return _("%(low)s to %(high)s", low=fmt(low), high=fmt(high))


def goal_chart(outcomes: Outcomes) -> Markup:
    rows = [(goal_name(size), outcome.rate or 0, percent_filter(outcome.rate)) for size, outcome in outcomes.by_goal]
    return charts.bar_chart(_("Success rate by goal size"), rows, top=100)


def review_chart(period: Period, review: ReviewTimes) -> Markup:
    return charts.line_chart(
        _("Median time to review by week: %(median)s over the period", median=duration(review.median or 0)),
        _weeks(period), [(_("Median time to review"), review.weekly)], duration)


def campaigns_backed_name(campaigns: int) -> str:
    if campaigns >= MOST_CAMPAIGNS:
        return _("%(num)d campaigns or more", num=campaigns)
    return ngettext("%(num)d campaign", "%(num)d campaigns", campaigns)


def repeat_chart(repeat: RepeatBackers) -> Markup:
    rows = [(campaigns_backed_name(campaigns), n, str(n)) for campaigns, n in repeat.by_campaigns.items()]
    return charts.bar_chart(
        _("Backers by campaigns backed: %(repeat)d of %(backers)d backed two or more (%(share)s)",
          repeat=repeat.repeat, backers=repeat.backers, share=percent_filter(repeat.share)), rows)


def charges_chart(period: Period, charges_: Charges) -> Markup:
    failed, recovered = charges_.weekly_rates()
    return charts.line_chart(
        _("Charges by week: %(failed)s failed first, %(recovered)s of those recovered",
          failed=percent_filter(charges_.failure_rate), recovered=percent_filter(charges_.recovery_rate)),
        _weeks(period), [(_("Failed first"), failed), (_("Recovered"), recovered)], lambda v: percent_filter(round(v)), top=100)


def refunds_chart(period: Period, refunds_: Refunds) -> Markup:
    fmt = _money(refunds_.currency)
    return charts.line_chart(
        ngettext("Refunds by week in %(currency)s: %(num)d refund, %(amount)s",
                 "Refunds by week in %(currency)s: %(num)d refunds, %(amount)s",
                 sum(refunds_.count), currency=refunds_.currency, amount=fmt(sum(refunds_.amount))),
        _weeks(period), [(_("Refunded"), refunds_.amount)], fmt)


def reports_chart(period: Period, reports_: Reports) -> Markup:
    return charts.line_chart(
        _("Reports by week: %(made)d made, %(open)d still open",
          made=sum(reports_.made), open=sum(reports_.still_open)),
        _weeks(period), [(_("Made"), reports_.made), (_("Still open"), reports_.still_open)], _count)
