"""Fulfillment (SPEC §14): what happens after a campaign funds — surveys, answers, shipping addresses,
shipment items, CSV import/export and the backers' data rights. A floor above pledges, beside
settlement: nothing below imports it. Addresses sit in their own table with their own access rules
(`addresses.address_for`), so that who may read one, and its erasure, are each one place."""
from flask import Blueprint

bp = Blueprint("fulfillment", __name__)

from app.fulfillment import routes  # noqa: E402,F401
