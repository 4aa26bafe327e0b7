"""Stripe webhooks: events verified, stored once by their id, handed to the pledges and settlement areas."""
from flask import Blueprint

bp = Blueprint("webhooks", __name__)

from app.webhooks import routes  # noqa: E402,F401
