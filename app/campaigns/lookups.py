"""The campaign a page is about, as the views of every blueprint look it up.

`visible_or_404`: the campaign at a slug if the current person may see it (a draft is its creator's
and the moderators' only), else 404. `own_or_403`: the same, and only for its creator (403 for others
who can see it). `offer=True` for pages that show the whole offer (destinations, add-ons).
`public_facts`: what a member's page served from its shell needs of a public campaign.
"""
from __future__ import annotations

from flask import abort
from flask_login import current_user

from app import caching
from app.campaigns import services


def visible_or_404(slug: str, offer: bool = False):
    return services.get_visible(slug, current_user, offer) or abort(404)


def public_facts(slug: str):
    """The facts of the public campaign at `slug` a member's page needs around its shell
    (services.PublicFacts), cached per campaigns' version; None when it is not public (the page's
    long way then knows its 404 or its preview)."""
    return caching.cached("campaign-facts", slug, make=lambda: services.public_facts(slug) or False) or None


def own_or_403(slug: str, offer: bool = False):
    campaign = visible_or_404(slug, offer)
    if not services.is_creator(campaign, current_user):
        abort(403)
    return campaign
