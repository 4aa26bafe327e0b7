"""Moderation: the review queue, review decisions, featuring and suspending campaigns (moderators only)."""
from flask import Blueprint

bp = Blueprint("moderation", __name__)

from app.moderation import routes  # noqa: E402,F401
