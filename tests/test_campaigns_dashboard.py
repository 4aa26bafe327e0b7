"""The creator's dashboard orders campaigns by what needs the creator (issue 18, defect 4), and an ended
campaign's "manage" page is its results, not a greyed-out editor (defect 3)."""
from __future__ import annotations

import re

from tests.factories import login, make_campaign, make_user


def _groups(page: str) -> list[tuple[str, list[str]]]:
    found = []
    for part in page.split('class="mb-4 dashboard-group" data-group="')[1:]:
        group = part[:part.index('"')]
        found.append((group, re.findall(r'<h3 class="h5 mb-1"><a href="[^"]+">([^<]+)</a>', part)))
    return found


def test_what_needs_the_creator_comes_first(app, client, frozen_clock):
    creator = make_user("creator@example.com")
    moderator = make_user(moderator=True)
    for state, title in (("draft", "A draft"), ("successful", "Funded"), ("submitted", "In review"), ("live", "Live one"),
                         ("unsuccessful", "Missed"), ("changes_requested", "Asked to change")):
        make_campaign(creator, state, moderator=moderator, title=title)
    login(client, creator.email)
    page = client.get("/me/campaigns").get_data(as_text=True)
    groups = _groups(page)
    assert [g for g, _titles in groups] == ["action", "live", "review", "drafts", "ended"]
    assert sorted(dict(groups)["action"]) == ["Asked to change", "Funded"]  # the funded one has no survey sent
    assert dict(groups)["ended"] == ["Missed"] and dict(groups)["live"] == ["Live one"]
    action = page[page.index('data-group="action"'):page.index('data-group="live"')]
    assert "Send the backer survey: it asks your backers for their shipping address." in action
    assert "Make the changes the moderator asked for, then submit again." in action


def test_an_ended_campaign_is_managed_from_its_results(app, client, frozen_clock):
    creator = make_user("creator@example.com")
    funded = make_campaign(creator, "successful", title="Funded")
    login(client, creator.email)
    page = client.get(f"/campaigns/{funded.slug}/edit").get_data(as_text=True)
    assert 'class="card mb-4 campaign-results"' in page and "campaign-form" not in page and "disabled" not in page
    assert f'href="/campaigns/{funded.slug}/survey"' in page and f'href="/me/campaigns/{funded.slug}/payout"' in page
