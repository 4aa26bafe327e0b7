"""Issue 14: every route of the url_map, fed hostile values, as a visitor, a member and a moderator — no 500.

Each variable of each rule is replaced in turn by ids past the databases' range, NULs, overlong and odd
text, while the others keep real values (a live campaign with a tier, a pledge, an update, a comment, an
FAQ entry and a question), so that handlers are reached, not only routing. POSTs carry junk in the form
fields the site uses; GETs carry junk in the query string; and every GET route is asked for with
malformed Host headers.
"""
from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from sqlalchemy import select

from app.campaigns import services as campaigns
from app.community import services as community
from app.extensions import db
from app.pledges.models import Pledge
from tests.community_helpers import back, make_world
from tests.factories import login

HOSTILE_IDS = [str(2**31), str(2**31 - 1), str(2**63), str(2**64), "0", "-1", "1" * 40]
HOSTILE_TEXT = ["%00", "a%00b", "x" * 5000, "%E2%80%AE", "..%2F..%2Fetc%2Fpasswd", "%C3%B1", "%FF%FE", "'%22%3E%3Cscript%3E"]
HOSTILE_HOSTS = ["a" * 64, "a..b", "", "local host", "localhost:0", "localhost:99999", "[::1", "évil.example"]
JUNK_FORM = {
    "csrf_token": "x", "email": "\x00@example.com", "password": "\x00" * 9, "display_name": "a" * 5000, "title": "\x00",
    "blurb": "b" * 5000, "category": "\x00", "goal": "9" * 400, "currency": "XXX", "duration_days": str(2**64),
    "story": "\x00" * 10, "risks": "r" * 100_000, "amount": "¥" + "9" * 40, "quantity_limit": str(2**64),
    "estimated_delivery": "9999-99", "tier": str(2**64), "decision": "\x00", "note": "n" * 20_000, "body": "\x00",
    "parent_id": str(2**63), "ships": "\x00", "shipping_per": "both", "tiers": str(2**64),
    "destinations-0-country": "\x00Z", "destinations-0-cost": "-" + "9" * 50, "destinations-99999-country": "FR", "question": "q" * 5000, "answer": "\x00", "reason": "\x00", "lang": "\x00",
    "next": "//evil.example", "setup_intent": "seti_\x00", "payment_method": "pm_" + "x" * 500, "direction": "sideways",
    "locale": "xx", "timezone": "Mars/Olympus", "featured": "\x00", "backers_only": "maybe", "email_updates": "\x00",
}
JUNK_QUERY = f"?page={2**64}&tier={2**64}&before={2**63}&q=%00{'x' * 3000}&sort=%00&category=%FF&next=//evil&lang=%00&weeks=%00"


@pytest.fixture
def world(app):
    campaign = make_world()
    creator = campaign.creator
    backer = db.session.scalar(select(Pledge).where(Pledge.campaign_id == campaign.id))
    update = community.post_update(campaign, creator, "News", "Body", backers_only=False)
    comment = community.add_comment(campaign, creator, "Hello")
    entry = community.add_faq(campaign, creator, "Does it float?", "Yes.")
    asker = back(campaign)
    question = community.ask(campaign, asker, "When?")
    addon = campaigns.add_addon(campaign, creator, campaigns.AddonInput("Stand", "Oak.", 1500, 20, ships=True,
                                                                         destinations={"FR": 500, "ZZ": 900}))
    return {
        "addon_id": addon.id,
        "slug": campaign.slug, "tier_id": campaign.tiers[0].id, "pledge_id": backer.id, "update_id": update.id,
        "comment_id": comment.id, "entry_id": entry.id, "question_id": question.id, "user_id": creator.id,
    }


def _clients(app) -> dict:
    clients = {"visitor": app.test_client()}
    for role, email in (("member", "backer@example.com"), ("moderator", "mod@example.com")):
        clients[role] = app.test_client()
        login(clients[role], email)
    return clients


def _valid(name: str, world: dict) -> str:
    return str(world.get(name, world["slug"] if name == "slug" else "x"))


def _paths(rule, world: dict) -> list[str]:
    """The rule with every variable real, then with each variable in turn hostile."""
    names = list(rule.arguments)

    def build(values: dict[str, str]) -> str:
        path = rule.rule
        for name in names:
            path = re.sub(rf"<(?:[^:<>]+:)?{name}>", values[name], path)
        return path

    real = {name: quote(_valid(name, world), safe="") for name in names}
    paths = [build(real)]
    for name in names:
        is_id = type(rule._converters[name]).__name__ in ("IdConverter", "IntegerConverter")
        for hostile in HOSTILE_IDS if is_id else HOSTILE_TEXT:
            paths.append(build({**real, name: hostile}))
    return paths


def _check(response, role: str, method: str, path: str, failures: list) -> None:
    if response.status_code >= 500:
        failures.append((role, method, path[:120], response.status_code))


def test_no_route_answers_500_to_hostile_input(app, world):
    clients = _clients(app)
    failures: list = []
    requests = 0
    for rule in app.url_map.iter_rules():
        methods = sorted((rule.methods or set()) & {"GET", "POST"})
        for path in _paths(rule, world):
            for role, client in clients.items():
                for method in methods:
                    if rule.endpoint == "accounts.logout" and role != "visitor":
                        continue  # it would end the session the rest of the test runs in
                    if method == "GET":
                        response = client.get(path + JUNK_QUERY)
                    else:
                        response = client.post(path, data=JUNK_FORM)
                    requests += 1
                    _check(response, role, method, path, failures)
    assert requests > 1500
    assert failures == []


def test_malformed_hosts_never_give_500(app, world):
    clients = _clients(app)
    failures: list = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()):
            continue
        path = _paths(rule, world)[0]
        for host in HOSTILE_HOSTS:
            for role, client in clients.items():
                response = client.get(path, headers={"Host": host})
                _check(response, role, f"GET Host={host[:20]!r}", path, failures)
                assert response.status_code == 400, (host, path, response.status_code)
    assert failures == []
