"""Community: campaign updates, comments, FAQ and backers' questions, reports to moderators, and the
creator's track record. Sits above pledges (who counts as a backer) and below moderation."""
from flask import Blueprint

bp = Blueprint("community", __name__)

from app.community import profiles, routes  # noqa: E402,F401
