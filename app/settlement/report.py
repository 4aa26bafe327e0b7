"""The money report of an ended campaign (SPEC §5, §6) and its backer list as CSV.

Every figure is an integer in the campaign currency's minor unit. The report is read in two
statements whatever the number of pledges: pledge sums per state, then the succeeded charge attempts
of the pledges collected (or refunded since).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, case, false, func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from app import money
from app.campaigns.models import Addon, Campaign, CampaignState
from app.extensions import db
from app.pledges.models import Pledge, PledgeState
from app.settlement.models import AttemptStatus, ChargeAttempt
from app.spreadsheets import safe_cell

P = PledgeState

#: An ESTIMATE of Stripe's card processing fee, used only for charges whose fee Stripe did not report
#: in the charge's currency (e.g. the account settles in another one): Stripe's standard list price
#: per charge, as (percent, fixed minor units). Real fees vary by country and card; the report then
#: says "estimate".
ESTIMATED_STRIPE_FEE: dict[str, tuple[Decimal, int]] = {
    "USD": (Decimal("2.9"), 30),
    "EUR": (Decimal("2.9"), 30),
    "GBP": (Decimal("2.9"), 30),
    "CNY": (Decimal("2.9"), 30),
    "JPY": (Decimal("3.6"), 0),
}

#: The campaign states that have a money report.
ENDED = (CampaignState.SUCCESSFUL.value, CampaignState.UNSUCCESSFUL.value)


@dataclass(frozen=True)
class MoneyReport:
    """What a campaign raised and what its creator is due, in minor units of `currency`."""

    currency: str
    funded: bool
    pledged_at_deadline: int
    backers_at_deadline: int
    #: Charged successfully: pledges collected now, and those refunded since (their money came in).
    collected: int
    collected_count: int
    #: Funded, not charged yet (the pass is on it).
    charging: int
    charging_count: int
    #: The charge failed; the backer can still fix it within the retry window.
    errored: int
    errored_count: int
    #: The retry window ran out: never collected.
    dropped: int
    dropped_count: int
    refunded: int
    refunded_count: int
    #: What `collected` is made of (SPEC §12): rewards, add-ons, shipping and bonus support.
    rewards: int
    addons: int
    shipping: int
    bonus: int
    platform_fee_percent: Decimal
    platform_fee: int
    stripe_fee: int
    #: True when Stripe did not report the fee of at least one charge: `stripe_fee` holds an estimate.
    stripe_fee_estimated: bool
    net_payout: int


def estimate_stripe_fee(amount: int, charges: int, currency: str) -> int:
    """An ESTIMATE of Stripe's fee on `charges` charges totalling `amount` minor units (see ESTIMATED_STRIPE_FEE)."""
    percent, fixed = ESTIMATED_STRIPE_FEE.get(currency, ESTIMATED_STRIPE_FEE["USD"])
    return money.Money(amount, currency).percent(percent).amount + fixed * charges


def money_reports(campaigns: Iterable[Campaign]) -> dict[int, MoneyReport]:
    """The reports of the ended (successful or unsuccessful) campaigns among `campaigns`, by id."""
    ended = {c.id: c for c in campaigns if c.state in ENDED}
    if not ended:
        return {}
    ids = list(ended)
    parts = (Pledge.amount, Pledge.reward_amount, Pledge.addons_amount, Pledge.shipping_amount, Pledge.bonus_amount)
    by_state: dict[tuple[int, str], tuple[int, ...]] = {
        (cid, state): (int(n), *(int(total or 0) for total in sums))
        for cid, state, n, *sums in db.session.execute(
            select(Pledge.campaign_id, Pledge.state, func.count(), *(func.sum(part) for part in parts))
            .where(Pledge.campaign_id.in_(ids), Pledge.state.in_(
                [P.CHARGING.value, P.ERRORED.value, P.DROPPED.value, P.COLLECTED.value, P.REFUNDED.value]))
            .group_by(Pledge.campaign_id, Pledge.state)
        )
    }
    charged: dict[tuple[int, str], tuple[int, int, int, int, int]] = {
        (cid, state): (int(n), int(total or 0), int(fees or 0), int(unreported_n or 0), int(unreported or 0))
        for cid, state, n, total, fees, unreported_n, unreported in db.session.execute(
            select(
                Pledge.campaign_id, Pledge.state, func.count(ChargeAttempt.id), func.sum(ChargeAttempt.amount),
                func.sum(ChargeAttempt.fee_amount),
                func.sum(case((ChargeAttempt.fee_amount.is_(None), 1), else_=0)),
                func.sum(case((ChargeAttempt.fee_amount.is_(None), ChargeAttempt.amount), else_=0)),
            )
            .join(Pledge, Pledge.id == ChargeAttempt.pledge_id)
            .where(Pledge.campaign_id.in_(ids), ChargeAttempt.status == AttemptStatus.SUCCEEDED.value,
                   Pledge.state.in_([P.COLLECTED.value, P.REFUNDED.value]))
            .group_by(Pledge.campaign_id, Pledge.state)
        )
    }
    percent = Decimal(str(current_app.config["PLATFORM_FEE_PERCENT"]))
    reports = {}
    for cid, campaign in ended.items():
        currency = campaign.currency
        kept = charged.get((cid, P.COLLECTED.value), (0, 0, 0, 0, 0))
        back = charged.get((cid, P.REFUNDED.value), (0, 0, 0, 0, 0))
        collected_count, collected = kept[0] + back[0], kept[1] + back[1]
        reported_fees = kept[2] + back[2]
        unreported_count, unreported = kept[3] + back[3], kept[4] + back[4]
        stripe_fee = reported_fees + (estimate_stripe_fee(unreported, unreported_count, currency) if unreported_count else 0)
        refunded = back[1]
        platform_fee = money.Money(collected - refunded, currency).percent(percent).amount
        none = (0,) * (len(parts) + 1)
        charging = by_state.get((cid, P.CHARGING.value), none)
        errored = by_state.get((cid, P.ERRORED.value), none)
        dropped = by_state.get((cid, P.DROPPED.value), none)
        # The parts of the pledges charged (collected now, or refunded since), as `collected` counts them.
        came_in = [a + b for a, b in zip(by_state.get((cid, P.COLLECTED.value), none), by_state.get((cid, P.REFUNDED.value), none), strict=True)]
        reports[cid] = MoneyReport(
            currency=currency,
            funded=campaign.state == CampaignState.SUCCESSFUL.value,
            pledged_at_deadline=int(campaign.pledged_at_deadline or 0),
            backers_at_deadline=int(campaign.backers_at_deadline or 0),
            collected=collected, collected_count=collected_count,
            charging=charging[1], charging_count=charging[0],
            errored=errored[1], errored_count=errored[0],
            dropped=dropped[1], dropped_count=dropped[0],
            refunded=refunded, refunded_count=back[0],
            rewards=came_in[2], addons=came_in[3], shipping=came_in[4], bonus=came_in[5],
            platform_fee_percent=percent,
            platform_fee=platform_fee,
            stripe_fee=stripe_fee,
            stripe_fee_estimated=unreported_count > 0,
            net_payout=collected - refunded - platform_fee - stripe_fee,
        )
    return reports


def money_report(campaign: Campaign) -> MoneyReport | None:
    """The money report of one campaign; None unless it ended successful or unsuccessful."""
    return money_reports([campaign]).get(campaign.id)


def collected_total(campaign: Campaign) -> int:
    """What the campaign keeps from its backers so far: the charges of the pledges collected (refunded
    ones excluded). One statement, for the public page."""
    return int(db.session.scalar(
        select(func.coalesce(func.sum(ChargeAttempt.amount), 0))
        .join(Pledge, Pledge.id == ChargeAttempt.pledge_id)
        .where(Pledge.campaign_id == campaign.id, Pledge.state == P.COLLECTED.value,
               ChargeAttempt.status == AttemptStatus.SUCCEEDED.value)
    ) or 0)


# --- the backer list -------------------------------------------------------------------------

#: Cells are made safe from spreadsheet formulas by the one helper the shipping list uses too.
_cell = safe_cell


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def plain_amount(amount: int, currency: str) -> str:
    """Minor units as a plain decimal in major units, for spreadsheets: "40.00", "2500" (JPY)."""
    digits = money.exponent(currency)
    return f"{money.to_major(amount, currency):.{digits}f}"


def backer_rows(campaign: Campaign) -> list[Pledge]:
    """The pledges that were active at the deadline or later (active now, charged, collected, failed,
    dropped, refunded, or released when the campaign did not fund), oldest first."""
    ended_late = Pledge.ended_at >= campaign.deadline if campaign.deadline is not None else false()
    return list(db.session.scalars(
        select(Pledge)
        .where(Pledge.campaign_id == campaign.id, or_(
            Pledge.state.in_([P.ACTIVE.value, P.CHARGING.value, P.COLLECTED.value, P.ERRORED.value, P.DROPPED.value, P.REFUNDED.value]),
            and_(Pledge.state == P.RELEASED.value, ended_late),
        ))
        .options(joinedload(Pledge.backer), joinedload(Pledge.tier), selectinload(Pledge.addons))
        .order_by(Pledge.activated_at, Pledge.id)
    ).unique())


def campaign_addons(campaign: Campaign) -> list[Addon]:
    """Every add-on the campaign offered, removed ones too (pledges may hold them), in id order: one
    CSV column each."""
    return list(db.session.scalars(select(Addon).where(Addon.campaign_id == campaign.id).order_by(Addon.id)))


def backers_csv(campaign: Campaign) -> str:
    """The campaign's backers as CSV (one row per pledge of `backer_rows`), dates in UTC ISO 8601."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    addons = campaign_addons(campaign)
    # The columns before add-ons came first stay first: spreadsheets made from older exports still line up.
    writer.writerow([_("Name"), _("Email"), _("Reward"), _("Amount"), _("Currency"), _("Status"), _("Pledged at (UTC)"),
                     _("Collected at (UTC)"), _("Reward amount"), _("Add-ons amount"), _("Shipping"), _("Bonus support"),
                     _("Destination country"), *(_("Add-on: %(title)s (quantity)", title=addon.title) for addon in addons)])
    for pledge in backer_rows(campaign):
        held = pledge.addon_quantities()
        currency = pledge.currency
        writer.writerow([_cell(v) for v in (
            pledge.backer.display_name,
            pledge.backer.email,
            pledge.tier.title if pledge.tier else _("No reward"),
            plain_amount(pledge.amount, currency),
            currency,
            pledge.state,
            _iso(pledge.activated_at or pledge.created_at),
            _iso(pledge.collected_at),
            plain_amount(pledge.reward_amount, currency),
            plain_amount(pledge.addons_amount, currency),
            plain_amount(pledge.shipping_amount, currency),
            plain_amount(pledge.bonus_amount, currency),
            pledge.country or "",
            *(held.get(addon.id, 0) for addon in addons),
        )])
    return out.getvalue()
