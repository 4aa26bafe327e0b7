"""Pledges: a backer's saved card and promise, from the pledge form to collection."""
from flask import Blueprint

bp = Blueprint("pledges", __name__)

from app.pledges import routes  # noqa: E402,F401
