"""Payouts (SPEC §13): creators' connected accounts, one transfer per funded campaign after the hold,
the ledger of money movements, risk holds and reconciliation with Stripe. A floor above settlement:
settlement never imports it; this area reads the state settlement leaves."""
from flask import Blueprint

bp = Blueprint("payouts", __name__)

from app.payouts import routes  # noqa: E402,F401
