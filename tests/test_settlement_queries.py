"""How many SQL statements one charge costs (bench/settlement.py showed the database round trips, not
Stripe, limiting a large settlement): a fixed small number per pledge, whatever the number of pledges."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import event

from app import clock
from app.extensions import db
from app.settlement import services as settlement
from tests.test_settlement_faults import PAST_DEADLINE, assert_collected_exactly_once, fund

#: Per charge (SETTLEMENT.md's three commits): load the pledge with its backer and campaign, and its
#: last attempt; insert the attempt, commit, read it back; save the PaymentIntent id, commit, read the
#: attempt again; load the pledge again and write the outcome (pledge, attempt, audit row, outbox),
#: commit. It was 13 SELECTs before: one lazy load or reload per object after every commit.
#: Connection checks (pings) and transaction statements are not counted.
MAX_SELECTS_PER_CHARGE = 5
MAX_STATEMENTS_PER_CHARGE = 11


class Statements:
    def __init__(self) -> None:
        self.seen: Counter = Counter()

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("SELECT", "INSERT", "UPDATE", "DELETE") and statement.strip() != "SELECT 1":
            self.seen[verb] += 1


def _statements_for(app, localstripe, backers: int) -> Counter:
    """Statements of a pass that charges `backers` pledges of a campaign already decided."""
    campaign_id = fund(localstripe, backers)
    clock.set_offset(PAST_DEADLINE)
    settlement.decide_campaign(campaign_id, clock.utcnow())
    counter = Statements()
    event.listen(db.engine, "before_cursor_execute", counter)
    try:
        summary = settlement.run_pass(concurrency=1)
    finally:
        event.remove(db.engine, "before_cursor_execute", counter)
    assert sum(n for (_c, o), n in summary.outcomes.items() if o == "collected") == backers
    assert_collected_exactly_once(localstripe, campaign_id)
    return counter.seen


def test_a_charge_costs_a_few_statements_whatever_the_number_of_pledges(app, localstripe):
    small = _statements_for(app, localstripe, 5)
    clock.reset()
    large = _statements_for(app, localstripe, 25)
    # The difference between the two passes is the cost of 20 charges (the fixed part cancels out).
    per_charge = {verb: (large[verb] - small[verb]) / 20 for verb in set(small) | set(large)}
    assert per_charge.get("SELECT", 0) <= MAX_SELECTS_PER_CHARGE + 0.5, per_charge  # + claims, one per batch of 20
    assert sum(per_charge.values()) <= MAX_STATEMENTS_PER_CHARGE + 0.5, per_charge
