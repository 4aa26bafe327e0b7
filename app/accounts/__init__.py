"""Accounts: registration, login, profile, password reset, roles."""
from flask import Blueprint

bp = Blueprint("accounts", __name__)

from app.accounts import notifications, routes  # noqa: E402,F401
