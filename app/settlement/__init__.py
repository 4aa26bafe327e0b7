"""Settlement: decide campaigns at their deadline, charge funded pledges exactly once, recover failures;
the creator's money report and backer list, and the backer's payment fixes."""
from flask import Blueprint

bp = Blueprint("settlement", __name__)

from app.settlement import routes  # noqa: E402,F401
