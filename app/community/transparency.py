"""What really reached the creator of an ended campaign, for everyone to see on its page.

Pledged at the deadline comes from the campaign's snapshot columns (no query). Only a successful
campaign has money moving after it: its collected, still-charging, failed, dropped and refunded
pledges are read in ONE grouped statement, the same one "collected so far" used to cost. The
figures are those of `settlement.report` (the creator's money report) without the fees and payout.

Visitors' pages are cached by the campaigns' version (max `updated_at`): the settlement pass moves
the version of the campaigns it charged after each batch, and a refund moves it at once (see
`settlement.services._touch_campaigns`).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, distinct, func, select

from app.campaigns.models import Campaign, CampaignState
from app.extensions import db
from app.pledges.models import Pledge, PledgeState
from app.settlement.models import AttemptStatus, ChargeAttempt

P = PledgeState
_MOVING = (P.CHARGING.value, P.COLLECTED.value, P.ERRORED.value, P.DROPPED.value, P.REFUNDED.value)
#: The ended states a visitor can see; a suspended campaign is not public.
SHOWN = (CampaignState.SUCCESSFUL.value, CampaignState.UNSUCCESSFUL.value, CampaignState.CANCELED.value)


@dataclass(frozen=True)
class Figure:
    amount: int = 0
    count: int = 0


@dataclass(frozen=True)
class EndedFigures:
    """Minor units of `currency`; counts are pledges (one per backer)."""

    currency: str
    state: str
    pledged_at_deadline: Figure
    #: Charged and kept: what reached the creator (refunded pledges excluded).
    collected: Figure = Figure()
    #: Being charged right now (the settlement pass is on it).
    charging: Figure = Figure()
    #: The charge failed; the backer can still fix it within the retry window.
    errored: Figure = Figure()
    #: Never collected: the retry window ran out.
    dropped: Figure = Figure()
    #: Collected, then given back by a moderator.
    refunded: Figure = Figure()

    @property
    def funded(self) -> bool:
        return self.state == CampaignState.SUCCESSFUL.value

    @property
    def collected_percent(self) -> int | None:
        """Whole percent of the pledged-at-deadline amount that was collected."""
        if not self.funded or not self.pledged_at_deadline.amount:
            return None
        return (self.collected.amount * 100) // self.pledged_at_deadline.amount


def ended_figures(campaign: Campaign) -> EndedFigures | None:
    """The figures of an ended public campaign; None for any other. At most one statement."""
    if campaign.state not in SHOWN:
        return None
    pledged = Figure(int(campaign.pledged_at_deadline or 0), int(campaign.backers_at_deadline or 0))
    if campaign.state != CampaignState.SUCCESSFUL.value:  # nobody was charged: nothing to read
        return EndedFigures(campaign.currency, campaign.state, pledged)
    rows = db.session.execute(
        select(Pledge.state, func.count(distinct(Pledge.id)), func.sum(Pledge.amount), func.sum(ChargeAttempt.amount))
        .outerjoin(ChargeAttempt, and_(ChargeAttempt.pledge_id == Pledge.id, ChargeAttempt.status == AttemptStatus.SUCCEEDED.value))
        .where(Pledge.campaign_id == campaign.id, Pledge.state.in_(_MOVING))
        .group_by(Pledge.state)
    ).all()
    by_state = {state: (int(n), int(pledged_sum or 0), int(charged or 0)) for state, n, pledged_sum, charged in rows}

    def pledged_in(state: str) -> Figure:
        n, amount, _charged = by_state.get(state, (0, 0, 0))
        return Figure(amount, n)

    def charged_in(state: str) -> Figure:  # what the charges moved, as the money report counts it
        n, _amount, charged = by_state.get(state, (0, 0, 0))
        return Figure(charged, n)

    return EndedFigures(
        campaign.currency, campaign.state, pledged,
        collected=charged_in(P.COLLECTED.value),
        charging=pledged_in(P.CHARGING.value),
        errored=pledged_in(P.ERRORED.value),
        dropped=pledged_in(P.DROPPED.value),
        refunded=charged_in(P.REFUNDED.value),
    )
