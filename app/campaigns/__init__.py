"""Campaigns: drafts with funding tiers, the campaign state machine, public pages and discovery."""
from flask import Blueprint

bp = Blueprint("campaigns", __name__)

from app.campaigns import routes  # noqa: E402,F401
