"""The campaign a page is about, as the views of every blueprint look it up.

`visible_or_404`: the campaign at a slug if the current person may see it (a draft is its creator's
and the moderators' only), else 404. `own_or_403`: the same, and only for its creator (403 for others
who can see it). `offer=True` for pages that show the whole offer (destinations, add-ons).
"""
from __future__ import annotations

from flask import abort
from flask_login import current_user

from app.campaigns import services


def visible_or_404(slug: str, offer: bool = False):
    return services.get_visible(slug, current_user, offer) or abort(404)


def own_or_403(slug: str, offer: bool = False):
    campaign = visible_or_404(slug, offer)
    if not services.is_creator(campaign, current_user):
        abort(403)
    return campaign
