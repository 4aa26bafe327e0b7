"""The public page cache: visitors get cached pages until the data behind them changes."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import text

from app import caching, clock
from app.accounts.models import User
from app.campaigns import services as campaigns
from app.extensions import db
from tests.factories import login, make_campaign, make_user
from tests.queries import counting


@pytest.fixture
def cached_app(make_app):
    caching.clear()
    new = make_app(PUBLIC_PAGE_CACHE_SECONDS=60)
    yield new
    caching.clear()


def _statements(client, path: str) -> tuple[int, str]:
    with counting() as statements:
        body = client.get(path).get_data(as_text=True)
    return len(statements), body


@pytest.mark.parametrize("path", ["/", "/campaigns?sort=funded", "/campaigns/CAMPAIGN"])
def test_a_visitor_gets_the_cached_page_until_the_data_changes(app, cached_app, path):
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", title="Cached Lantern")
    path = path.replace("CAMPAIGN", campaign.slug)
    visitor = cached_app.test_client()
    with cached_app.app_context():
        first, page = _statements(visitor, path)
        second, again = _statements(visitor, path)
    assert "Cached Lantern" in page and again == page
    assert second == 1 < first  # only the version is read
    _rename(campaign, "Renamed Lantern")
    with cached_app.app_context():
        _count, changed = _statements(visitor, path)
    assert "Renamed Lantern" in changed


def test_members_and_flashes_are_never_cached(app, cached_app):
    creator = make_user("creator@example.com")
    make_campaign(creator, "live", title="Member Lantern")
    member = cached_app.test_client()
    with cached_app.app_context():
        make_user("m@example.com", name="Mina")
        login(member, "m@example.com")
        page = member.get("/").get_data(as_text=True)
        assert "Mina" in page  # the member's own navigation, not a visitor's cached page
        visitor = cached_app.test_client()
        assert "Mina" not in visitor.get("/").get_data(as_text=True)
        member.post("/auth/logout")
        assert "You are logged out." in member.get("/").get_data(as_text=True)
        assert "You are logged out." not in visitor.get("/").get_data(as_text=True)


def test_the_version_is_read_once_a_window_and_again_after_a_local_commit(app, make_app):
    caching.clear()
    cached_app = make_app(PUBLIC_PAGE_CACHE_SECONDS=60, PUBLIC_PAGE_VERSION_SECONDS=60)
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", title="Quiet Lantern")
    visitor = cached_app.test_client()
    with cached_app.app_context():
        _statements(visitor, "/")
        hit, page = _statements(visitor, "/")
        assert hit == 0 and "Quiet Lantern" in page  # a hit inside the window asks the database nothing
        # Another process changes a campaign: this one does not see it inside its window ...
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE campaigns SET title = 'Elsewhere Lantern', updated_at = :t WHERE id = :id"),
                         {"t": clock.utcnow() + timedelta(seconds=1), "id": campaign.id})
        assert "Quiet Lantern" in _statements(visitor, "/")[1]
        # ... but a commit made by this process is seen at once.
        campaigns.set_featured(db.session.get(type(campaign), campaign.id), make_user("mod@example.com", moderator=True), True)
        db.session.commit()
        assert "Elsewhere Lantern" in _statements(visitor, "/")[1]
    caching.clear()


def test_members_share_the_campaign_part_of_the_pledge_form_and_nothing_of_their_own(app, cached_app):
    """The pledge form's tiers and summary are rendered once per campaign version, language, time
    zone and chosen tier; each member still gets their own name, CSRF token and chosen reward."""
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", title="Shared Lantern", tiers=2)
    path = f"/campaigns/{campaign.slug}/pledge"
    with cached_app.app_context():
        first_tier, second_tier = (str(t.id) for t in campaigns.get_by_slug(campaign.slug).tiers)
        ada, bo = cached_app.test_client(), cached_app.test_client()
        make_user("ada@example.com", name="Ada")
        make_user("bo@example.com", name="Bo")
        login(ada, "ada@example.com")
        login(bo, "bo@example.com")
        ada_page = ada.get(path).get_data(as_text=True)
        bo_page = bo.get(path).get_data(as_text=True)
        assert "Ada" in ada_page and "Ada" not in bo_page and "Bo" in bo_page
        tokens = {page: re.findall(r'name="csrf_token"[^>]*value="([^"]+)"', page) for page in (ada_page, bo_page)}
        assert tokens[ada_page] and tokens[bo_page] and not set(tokens[ada_page]) & set(tokens[bo_page])
        assert _fieldset(ada_page) == _fieldset(bo_page)  # the same campaign part, once rendered
        assert _composition(ada_page) == _composition(bo_page)
        # Without a reward the amount starts at the minimum; with one, empty: each its own rendering.
        minimum = re.search(r'<input[^>]*name="amount"[^>]*>', _composition(ada_page)).group(0)
        with_reward = re.search(r'<input[^>]*name="amount"[^>]*>', _composition(bo.get(f"{path}?tier={first_tier}").get_data(as_text=True))).group(0)
        assert 'value="1.00"' in minimum or 'value="0.50"' in minimum, minimum
        assert 'value="' not in with_reward or 'value=""' in with_reward, with_reward

        # The reward chosen from the campaign page is part of the key: each sees their own checked.
        assert f'value="{first_tier}"' in _checked(ada.get(f"{path}?tier={first_tier}").get_data(as_text=True))
        assert f'value="{second_tier}"' in _checked(bo.get(f"{path}?tier={second_tier}").get_data(as_text=True))
        assert 'value=""' in _checked(ada.get(f"{path}?tier=junk").get_data(as_text=True))

        # Another language gets its own rendering.
        french = cached_app.test_client()
        make_user("fr@example.com", name="Flore")
        login(french, "fr@example.com")
        assert "Sans contrepartie, je veux simplement aider" in _fieldset(french.get(path, headers={"Accept-Language": "fr"}).get_data(as_text=True))

    # A change to the campaign shows at once.
    _rename(campaign, "Renamed Shared Lantern")
    with cached_app.app_context():
        assert "Renamed Shared Lantern" in _summary(ada.get(path).get_data(as_text=True))


def _rename(campaign, title: str) -> None:
    """A change to what visitors see (written straight to the row: a live campaign's title is locked
    for its creator, but a moderator's fix or a data migration still moves the version)."""
    campaign.title = title
    campaign.updated_at = clock.utcnow()
    db.session.commit()


def _fieldset(page: str) -> str:
    return page[page.index("<fieldset"):page.index("</fieldset>")]


def _composition(page: str) -> str:
    return page[page.index('data-show-for="no-reward"'):page.index('id="pledge-offer"')]


def _checked(page: str) -> str:
    return " ".join(re.findall(r'<input[^>]*name="tier"[^>]*checked[^>]*>', _fieldset(page)))


def _summary(page: str) -> str:
    return page[page.index('<div class="col-lg-5">'):]


def test_members_share_the_campaign_page_but_each_sees_only_their_own(app, cached_app, localstripe):
    """The campaign page's story, figures and rewards are rendered once and shared; each member's
    own parts (name, pledge, saved state, CSRF tokens) are theirs alone, whoever came first."""
    from app.community import follows
    from tests.test_pledges import pledge_with_card

    creator = make_user("creator@example.com", name="Cora Creator")
    campaign = make_campaign(creator, "live", title="Shared Page Lantern", tiers=2, currency="USD")
    path = f"/campaigns/{campaign.slug}"
    ada, bo, cy, visitor = (cached_app.test_client() for _ in range(4))
    for client, email, name in ((ada, "ada@example.com", "Ada"), (bo, "bo@example.com", "Bo"), (cy, "cy@example.com", "Cy")):
        make_user(email, name=name)
        login(client, email)
    pledge_with_card(ada, localstripe, campaign, tier=str(campaign.tiers[0].id), amount="60")
    follows.follow(campaigns.get_by_slug(campaign.slug), db.session.scalar(db.select(type(creator)).filter_by(email="bo@example.com")))

    with cached_app.app_context():
        pages = {name: client.get(path).get_data(as_text=True) for name, client in
                 (("ada", ada), ("bo", bo), ("cy", cy), ("visitor", visitor), ("ada again", ada), ("cy again", cy))}
    assert "You back this project · $60.00" in pages["ada"] and "You back this project · $60.00" in pages["ada again"]
    for other in ("bo", "cy", "visitor", "cy again"):
        assert "You back this" not in pages[other] and "Manage your pledge" not in pages[other]
    assert "Remove from saved" in pages["bo"]
    for other in ("ada", "cy", "cy again"):
        assert "Remove from saved" not in pages[other] and "Remind me" in pages[other]
    assert "Log in to save this campaign" in pages["visitor"]
    for name, page in pages.items():  # each their own name in the navigation, nobody else's
        own = name.split()[0].capitalize()
        assert all((n in _nav(page)) == (n == own) for n in ("Ada", "Bo", "Cy"))
    tokens = {name: set(re.findall(r'name="csrf_token"[^>]*value="([^"]+)"', page)) for name, page in pages.items()}
    assert tokens["ada"] and tokens["bo"] and tokens["cy"] and not tokens["ada"] & tokens["bo"] and not tokens["bo"] & tokens["cy"]
    # The shared parts are one rendering for everyone.
    assert _rewards(pages["ada"]) == _rewards(pages["bo"]) == _rewards(pages["visitor"])

    # A change to the campaign reaches the shared parts at once.
    _rename(campaign, "Renamed Page Lantern")
    with cached_app.app_context():
        assert "Renamed Page Lantern" in bo.get(path).get_data(as_text=True)


def _nav(page: str) -> str:
    """The navigation, CSRF tokens left out (a random token may hold "Bo" or "Cy")."""
    return _without_tokens(page[:page.index("<main")])


def _rewards(page: str) -> str:
    start = page.index('id="tiers"')
    return page[start:page.index("</div>\n</div>", start)]


def test_each_role_sees_its_own_community_sections_of_the_shared_campaign_page(app, cached_app):
    """The community sections (updates, FAQ, comments) are rendered once per role and shared: a visitor,
    a member, backers, the creator and a moderator each see exactly what their role may, whoever
    came first; a member's own comments (Delete, a hidden one's note) are theirs alone; every form
    carries its own session's CSRF token; a new comment, update or FAQ entry shows at once."""
    from app.community import services as community
    from tests.community_helpers import make_world

    campaign = make_world(("bea@example.com", "Backer Bea"), ("cal@example.com", "Backer Cal"))
    users = {email.split("@")[0]: db.session.scalar(db.select(User).filter_by(email=email)) for email in
             ("creator@example.com", "backer@example.com", "bea@example.com", "cal@example.com", "member@example.com", "mod@example.com")}
    community.post_update(campaign, users["creator"], "Open news", "Everyone may read this.", backers_only=False)
    community.post_update(campaign, users["creator"], "Inner news", "Secret progress for backers.", backers_only=True)
    community.add_faq(campaign, users["creator"], "Does it float?", "It does.")
    community.add_faq(campaign, users["creator"], "Is it warm?", "Not very.")
    community.add_comment(campaign, users["bea"], "Bea says it glows.")
    hidden = community.add_comment(campaign, users["bea"], "Bea's rude remark.")
    community.hide_comment(campaign, hidden, users["mod"], "Kept civil.")
    path = f"/campaigns/{campaign.slug}"
    clients = {"visitor": cached_app.test_client()}
    for name in ("creator", "backer", "bea", "cal", "member", "mod"):
        clients[name] = cached_app.test_client()
        login(clients[name], f"{name}@example.com")

    with cached_app.app_context():
        order = ["visitor", "member", "cal", "backer", "bea", "creator", "mod", "backer", "visitor", "mod", "member", "creator", "bea", "cal"]
        pages = {}
        for name in order:  # every role after another's rendering, and again after its own
            pages.setdefault(name, []).append(_community(clients[name].get(path).get_data(as_text=True)))
    for name, seen in pages.items():
        assert _without_tokens(seen[0]) == _without_tokens(seen[1]), name
    page = {name: seen[0] for name, seen in pages.items()}

    readers = {"backer", "bea", "cal", "creator", "mod"}
    commenters, askers = {"backer", "bea", "cal", "creator"}, {"backer", "bea", "cal"}
    for name, html in page.items():
        assert ("Secret progress for backers." in html) == (name in readers), name
        assert ("This update is for backers only." in html) == (name not in readers), name
        assert ("Everyone may read this." in html and "Bea says it glows." in html and "Does it float?" in html), name
        assert ('class="mb-3 comment-form"' in html) == (name in commenters), name
        assert ('ask-form' in html) == (name in askers), name
        assert ("Move down" in html and "Add a question" in html) == (name == "creator"), name
        assert ('/hide"' in html) == (name == "mod"), name
        assert ("Delete your comment?" in html) == (name == "bea"), name
        assert ("Kept civil." in html and "Bea&#39;s rude remark." in html) == (name in ("bea", "mod")), name
        assert ("Backers and the creator can comment." in html) == (name == "visitor"), name
        assert ("Only backers and the creator can comment." in html) == (name in ("member", "mod")), name
    # Two backers without comments share one rendering, each with their own CSRF token.
    assert _without_tokens(page["backer"]) == _without_tokens(page["cal"])
    tokens = {name: set(re.findall(r'name="csrf_token"[^>]*value="([^"]+)"', html)) for name, html in page.items()}
    assert not tokens["visitor"] and not tokens["member"] and not tokens["mod"]
    for a in ("backer", "bea", "cal", "creator"):
        assert len(tokens[a]) == 1, a  # one per session, in every form of the section
        assert all(not tokens[a] & tokens[b] for b in ("backer", "bea", "cal", "creator") if b != a), a

    # Ben posts with the token of his shared rendering; the comment shows at once to Cal, the visitor and Ben
    # (now with his own Delete); the creator's new update and FAQ entry too.
    with cached_app.app_context():
        posted = clients["backer"].post(f"{path}/comments", data={"body": "Ben's first word.", "csrf_token": next(iter(tokens["backer"]))})
        assert posted.status_code == 302, posted.status_code
        cal, visitor, ben = (_community(clients[n].get(path).get_data(as_text=True)) for n in ("cal", "visitor", "backer"))
    assert all("Ben&#39;s first word." in html for html in (cal, visitor, ben))
    assert "Delete your comment?" in ben and "Delete your comment?" not in cal
    community.post_update(campaign, users["creator"], "Fresh news", "Just posted.", backers_only=False)
    community.add_faq(campaign, users["creator"], "Is it new?", "Brand new.")
    with cached_app.app_context():
        for name in ("cal", "visitor", "member"):
            html = _community(clients[name].get(path).get_data(as_text=True))
            assert "Just posted." in html and "Is it new?" in html, name


def _community(page: str) -> str:
    start = page.index('<div class="mt-1 community">')
    return page[start:page.index('</section>\n</div>', start)]


def _without_tokens(html: str) -> str:
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"|name="csrf_token" value="[^"]+"', "TOKEN", html)


def test_my_pledges_rows_are_each_members_own_and_show_every_change_at_once(app, cached_app, localstripe):
    """/me/pledges keeps the list rendered per everything its rows show: one member never gets
    another's row, and a change to a pledge, its reward or its campaign, the language or the zone, shows
    at the next request: a pledge's own columns even when written straight to the database, what the rows
    show of the campaigns (their titles, their rewards') when the campaigns' version moves, as on the
    public pages."""
    from tests.test_pledges import pledge_with_card

    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", title="Row Lantern", tiers=2, currency="USD")
    ada, bo = cached_app.test_client(), cached_app.test_client()
    for client, email, name in ((ada, "ada@example.com", "Ada"), (bo, "bo@example.com", "Bo")):
        make_user(email, name=name)
        login(client, email)
    pledge_with_card(ada, localstripe, campaign, tier=str(campaign.tiers[0].id), amount="60")
    pledge_with_card(bo, localstripe, campaign, tier=str(campaign.tiers[1].id), amount="70")

    def row(client, **headers) -> str:
        with cached_app.app_context():
            page = client.get("/me/pledges", headers=headers).get_data(as_text=True)
        return page[page.index('class="card mb-3 my-pledge"'):page.index("</main")]

    for _ in range(2):  # rendered, then from the cache
        assert "$60.00" in row(ada) and "$70.00" not in row(ada)
        assert "$70.00" in row(bo) and "$60.00" not in row(bo)
    ada_id, bo_id = (db.session.scalar(text("SELECT id FROM pledges WHERE amount = :a"), {"a": a}) for a in (6000, 7000))
    assert f"/pledges/{ada_id}" in row(ada) and f"/pledges/{bo_id}" not in row(ada)
    bo.set_cookie("tz", "Asia/Tokyo")  # another zone: the deadline in Bo's row is Tokyo's, Ada's still UTC
    assert "Japan" in row(bo) and "Japan" not in row(ada)

    # A reward's title, fixed once backers hold it, changed by a moderator's fix (straight to the row), and
    # the campaign's title: both show once the campaigns' version moves.
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE tiers SET title = 'Quiet Reward' WHERE id = :id"), {"id": campaign.tiers[0].id})
    _rename(campaigns.get_by_slug(campaign.slug), "Loudly Renamed")  # the campaign's version moves
    assert "Quiet Reward" in row(ada) and "Quiet Reward" not in row(bo)
    assert "Loudly Renamed" in row(ada) and "Loudly Renamed" in row(bo)
    # The pledge's own columns are the key: its state written straight to the row, no version moved, shows.
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE pledges SET state = 'collected', collected_at = :t WHERE id = :id"),
                     {"t": clock.utcnow(), "id": ada_id})
    assert "Paid on" in row(ada) and "Paid on" not in row(bo)

    # The backer cancels: the next page says so.
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', bo.get(f"/pledges/{bo_id}").get_data(as_text=True)).group(1)
    assert bo.post(f"/pledges/{bo_id}/cancel", data={"csrf_token": token}).status_code == 302
    assert "Canceled — not charged" in row(bo) and "Canceled" not in row(ada)

    # Another language gets its own rendering.
    assert "Payée le" in row(ada, **{"Accept-Language": "fr"}) and "Paid on" in row(ada)


def test_my_campaigns_blocks_are_each_creators_own_and_show_every_change_at_once(app, cached_app):
    """/me/campaigns keeps each campaign's block rendered per everything it shows: another creator never
    gets it, and a pledge (totals and chart), a ledger row, a payout, a campaign edit, a moderator's note
    or another language shows at the next request, even written straight to the rows without moving a version."""
    from app.payouts.models import LedgerEntry, Payout
    from tests.test_campaigns_helpers import build_campaign

    cora, dan = make_user("cora@example.com", name="Cora"), make_user("dan@example.com", name="Dan")
    live = build_campaign(cora, "live", tiers=1, title="Cora Live Lantern")
    funded = build_campaign(cora, "successful", tiers=1, title="Cora Funded Lantern")
    sent_back = build_campaign(cora, "changes_requested", tiers=1, title="Cora Sent Back Lantern")
    build_campaign(dan, "live", tiers=1, title="Dan Lantern")
    live.launched_at = clock.utcnow() - timedelta(days=2)  # a chart of two days
    db.session.commit()
    cora_client, dan_client = cached_app.test_client(), cached_app.test_client()
    login(cora_client, "cora@example.com")
    login(dan_client, "dan@example.com")

    def block(client, campaign, **headers) -> str:
        with cached_app.app_context():
            page = client.get("/me/campaigns", headers=headers).get_data(as_text=True)
        start = page.index(f'href="/campaigns/{campaign.slug}')
        found = page[start:page.index('class="card mb-3 my-campaign"', start) if 'class="card mb-3 my-campaign"' in page[start:] else len(page)]
        return _without_tokens(found)  # the last block runs to the page's end: its forms' tokens are signed anew each second

    first = block(cora_client, live)
    assert block(cora_client, live) == first  # from the cache
    assert "Please say more." in block(cora_client, sent_back)
    with cached_app.app_context():
        dan_page = dan_client.get("/me/campaigns").get_data(as_text=True)
    assert "Dan Lantern" in dan_page and "Cora" not in dan_page

    # A pledge written straight to the rows, no version moved: the totals and the chart change.
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE campaigns SET pledged_total = 4200, backers_count = 1 WHERE id = :id"), {"id": live.id})
        conn.execute(text(
            "INSERT INTO pledges (campaign_id, backer_id, amount, currency, reward_amount, addons_amount, shipping_amount, bonus_amount, "
            "state, created_at, updated_at, activated_at) VALUES (:c, :b, 4200, :cur, 4200, 0, 0, 0, 'active', :t, :t, :t)"),
            {"c": live.id, "b": dan.id, "cur": live.currency, "t": clock.utcnow() - timedelta(days=1)})
    changed = block(cora_client, live)
    assert "pledged by 1 backers" in changed and changed.split("<svg")[1] != first.split("<svg")[1]

    # A ledger row and a payout: the money report and the payout line.
    report = block(cora_client, funded)
    with cached_app.app_context():
        db.session.add(LedgerEntry(campaign_id=funded.id, kind="charge", amount=123456, currency=funded.currency, stripe_id="ch_cache"))
        db.session.commit()
    assert block(cora_client, funded) != report and "1,234.56" in block(cora_client, funded)
    with cached_app.app_context():
        db.session.add(Payout(campaign_id=funded.id, amount=98765, currency=funded.currency, state="due"))
        db.session.commit()
    assert "987.65" in block(cora_client, funded) and "is on its way" in block(cora_client, funded)

    # An edit of the campaign and another language.
    _rename(campaigns.get_by_slug(live.slug), "Cora Renamed Lantern")
    assert "Cora Renamed Lantern" in block(cora_client, live)
    assert "Objectif" in block(cora_client, live, **{"Accept-Language": "fr"})


def test_a_members_campaign_page_from_its_shell_is_the_page_rendered_whole(app, frozen_clock, cached_app, localstripe):
    """A member's campaign page comes from a shell per role with their own parts filled in: for the
    creator, a backer, a member who saved it and a member who did neither, it is the page rendered
    whole (the cache off), byte for byte but for the CSRF tokens, served first or from the shell."""
    from app.community import follows
    from tests.test_pledges import pledge_with_card

    creator = make_user("creator@example.com", name="Cora Creator")
    campaign = make_campaign(creator, "live", title="Whole Lantern", tiers=2, currency="USD")
    path = f"/campaigns/{campaign.slug}"
    people = {"creator": "creator@example.com", "backer": "ada@example.com", "saver": "bo@example.com", "member": "cy@example.com"}
    for name, email in people.items():
        if name != "creator":
            make_user(email, name=name.capitalize())
    shelled, whole = {}, {}
    for name, email in people.items():
        shelled[name], whole[name] = cached_app.test_client(), app.test_client()
        login(shelled[name], email)
        login(whole[name], email)
    pledge_with_card(whole["backer"], localstripe, campaign, tier=str(campaign.tiers[0].id), amount="60")
    follows.follow(campaigns.get_by_slug(campaign.slug), db.session.scalar(db.select(User).filter_by(email=people["saver"])))

    pages = {}
    for name in people:
        shelled[name].get("/me/pledges"), whole[name].get("/me/pledges")  # their flash messages (login, pledge)
        pages[name] = _without_tokens(whole[name].get(path).get_data(as_text=True))
        with cached_app.app_context():
            first, second = (_without_tokens(shelled[name].get(path).get_data(as_text=True)) for _ in range(2))
        assert first == pages[name] and second == pages[name], name
    seen_by = {"This is your campaign.": {"creator"}, "You back this project · $60.00": {"backer"},
               "Remove from saved": {"saver"}, "w-100 save-button": {"backer", "member"}}
    for words, who in seen_by.items():
        assert {name for name, page in pages.items() if words in page} == who, words


def test_a_shell_hit_reads_only_the_viewer_and_the_version(app, cached_app):
    """Served from its shell, a member's campaign page asks the database for the login session, the
    campaigns' version and the viewer's row, each one statement outside any transaction (no BEGIN, no
    COMMIT), and not for the campaign, its tiers or its sections."""
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", title="Quick Lantern", tiers=3)
    member = cached_app.test_client()
    make_user("m@example.com", name="Mina")
    login(member, "m@example.com")
    member.get("/me/pledges")  # the login's flash message
    with cached_app.app_context():
        first, page = _statements(member, f"/campaigns/{campaign.slug}")
        with counting() as statements:
            again = member.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Quick Lantern" in page and _without_tokens(again) == _without_tokens(page)
    assert len(statements) == 3 < first
    assert all(statement.lstrip().startswith("SELECT") for statement in statements), statements


def _member_on_a_live_campaign(cached_app, title: str):
    """A live campaign and a member logged in on `cached_app` (Mina): (campaign, its path, her client)."""
    campaign = make_campaign(make_user("creator@example.com"), "live", title=title)
    member = cached_app.test_client()
    make_user("m@example.com", name="Mina")
    login(member, "m@example.com")
    return campaign, f"/campaigns/{campaign.slug}", member


def test_saving_and_flashes_show_at_once_on_a_shell_page(app, cached_app):
    """Saving a campaign changes no campaign (the version stays): the member's saved state is their own
    part, so it shows at once; the page after the form carries its flash message (a page with one is
    rendered whole), the next one none."""
    from tests.factories import csrf_token

    _campaign, path, member = _member_on_a_live_campaign(cached_app, "Saved Lantern")
    with cached_app.app_context():
        assert "Remind me" in member.get(path).get_data(as_text=True)
        saved = member.post(f"{path}/save", data={"csrf_token": csrf_token(member, path), "back": "campaign"}, follow_redirects=True)
        page = saved.get_data(as_text=True)
        assert "Saved. We will email you 48 hours before the campaign ends." in page and "Remove from saved" in page
        again = member.get(path).get_data(as_text=True)
        assert "Saved. We will email you" not in again and "Remove from saved" in again
        member.post(f"{path}/unsave", data={"csrf_token": csrf_token(member, path), "back": "campaign"})
        assert "Remind me" in member.get(path).get_data(as_text=True)


def test_a_draft_is_never_a_shell(app, cached_app):
    """A campaign that is not public is no member's shell: its creator is sent to the preview, others get 404."""
    creator = make_user("creator@example.com")
    draft = make_campaign(creator, "draft", title="Hidden Lantern")
    own, other = cached_app.test_client(), cached_app.test_client()
    make_user("m@example.com")
    login(own, "creator@example.com")
    login(other, "m@example.com")
    with cached_app.app_context():
        for _ in range(2):
            assert own.get(f"/campaigns/{draft.slug}").headers["Location"].endswith(f"/campaigns/{draft.slug}/preview")
            assert other.get(f"/campaigns/{draft.slug}").status_code == 404


def test_the_pledge_form_shell_is_only_for_members_who_may_pledge(app, frozen_clock, cached_app, localstripe):
    """The pledge form from its shell is the form rendered whole; a member whose pledge is in, the
    creator, and everyone once the deadline has passed are still sent where the form sends them."""
    from tests.test_pledges import pledge_with_card

    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", title="Formed Lantern", tiers=1, currency="USD")
    path = f"/campaigns/{campaign.slug}/pledge"
    make_user("ada@example.com", name="Ada")
    shelled, whole, own = cached_app.test_client(), app.test_client(), cached_app.test_client()
    for client, email in ((shelled, "ada@example.com"), (whole, "ada@example.com"), (own, "creator@example.com")):
        login(client, email)
        client.get("/me/pledges")  # the login's flash message
    expected = _without_tokens(whole.get(path).get_data(as_text=True))
    with cached_app.app_context():
        assert [_without_tokens(shelled.get(path).get_data(as_text=True)) for _ in range(2)] == [expected, expected]
        assert own.get(path).headers["Location"].endswith(f"/campaigns/{campaign.slug}")
    pledge_with_card(whole, localstripe, campaign, tier=str(campaign.tiers[0].id), amount="60")
    with cached_app.app_context():
        assert "/pledges/" in shelled.get(path).headers["Location"]  # their pledge, to change it there
    other = cached_app.test_client()
    make_user("bo@example.com", name="Bo")
    login(other, "bo@example.com")
    clock.freeze(campaign.deadline + timedelta(seconds=1))
    with cached_app.app_context():
        assert other.get(path).headers["Location"].endswith(f"/campaigns/{campaign.slug}")


def test_my_pledges_page_from_its_shell_shows_saving_and_a_new_title_at_once(app, frozen_clock, cached_app):
    """/me/pledges comes from a shell keyed on the member, its rows and the version of their saved list
    (read with the login session: a hit does not read the list): saving, renaming a saved campaign, and
    removing it each show at once, and the page is the one rendered whole (the shell kept as UTF-8, a
    part's text beyond ASCII, the member's name, encoded into it)."""
    from tests.factories import csrf_token

    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live", title="Remembered Lantern · Zoë’s 灯")
    make_user("m@example.com", name="Mína 灯")
    shelled, whole = cached_app.test_client(), app.test_client()
    for client in (shelled, whole):
        login(client, "m@example.com")
        client.get("/campaigns")  # the login's flash message
    with cached_app.app_context():
        empty = shelled.get("/me/pledges").get_data(as_text=True)
        assert "saved-empty" in empty and "Remembered Lantern" not in empty
        path = f"/campaigns/{campaign.slug}"
        shelled.post(f"{path}/save", data={"csrf_token": csrf_token(shelled, path), "back": "campaign"})
        shelled.get(path)  # its flash message
        saved = shelled.get("/me/pledges").get_data(as_text=True)
        assert "Remembered Lantern · Zoë’s 灯" in saved and "Mína 灯" in saved and "saved-empty" not in saved
        assert _without_tokens(saved) == _without_tokens(whole.get("/me/pledges").get_data(as_text=True))
        with counting() as statements:
            assert _without_tokens(shelled.get("/me/pledges").get_data(as_text=True)) == _without_tokens(saved)
        assert statements and not any("campaign_follows" in statement for statement in statements), statements
    clock.advance(timedelta(minutes=1))  # a rename comes later than the campaign's last change
    _rename(campaign, "Renamed Remembered Lantern")
    with cached_app.app_context():
        assert "Renamed Remembered Lantern" in shelled.get("/me/pledges").get_data(as_text=True)
        shelled.post(f"{path}/unsave", data={"csrf_token": csrf_token(shelled, "/me/pledges"), "back": "saved"})
        shelled.get("/me/pledges")  # its flash message
        assert "saved-empty" in shelled.get("/me/pledges").get_data(as_text=True)


def test_my_campaigns_page_from_its_shell_is_the_creators_own_and_shows_every_change_at_once(app, frozen_clock, cached_app):
    """When every block shows only its campaign's row (live, in review, approved, canceled), /me/campaigns
    comes whole from a shell keyed on the creator and those rows, read in one statement outside any
    transaction: it is the page rendered whole, another creator never gets it, and a pledge written
    straight to the counters (no version moved), a title or a new draft show at the next request."""
    cora, make_user_dan = make_user("cora@example.com", name="Cora"), make_user("dan@example.com", name="Dan")
    live = make_campaign(cora, "live", title="Cora Live Lantern", tiers=1)
    make_campaign(cora, "submitted", title="Cora Review Lantern", tiers=1)
    make_campaign(make_user_dan, "live", title="Dan Lantern", tiers=1)
    live.launched_at = clock.utcnow() - timedelta(days=2)  # a chart
    db.session.commit()
    shelled, whole, dan = cached_app.test_client(), app.test_client(), cached_app.test_client()
    for client, email in ((shelled, "cora@example.com"), (whole, "cora@example.com"), (dan, "dan@example.com")):
        login(client, email)
        client.get("/me/pledges")  # the login's flash message
    with cached_app.app_context():
        first = _without_tokens(shelled.get("/me/campaigns").get_data(as_text=True))
        assert first == _without_tokens(whole.get("/me/campaigns").get_data(as_text=True))
        assert "Cora Live Lantern" in first and "Cora Review Lantern" in first and "<svg" in first
        with counting() as statements:
            again = shelled.get("/me/campaigns").get_data(as_text=True)
        assert _without_tokens(again) == first
        assert len(statements) == 2 and all(s.lstrip().startswith("SELECT") for s in statements), statements  # the session, the rows
        dan_page = dan.get("/me/campaigns").get_data(as_text=True)
    assert "Dan Lantern" in dan_page and "Cora" not in dan_page

    with db.engine.begin() as conn:  # a pledge as the counters show it, no version moved
        conn.execute(text("UPDATE campaigns SET pledged_total = 4200, backers_count = 1 WHERE id = :id"), {"id": live.id})
    with cached_app.app_context():
        assert "pledged by 1 backers" in shelled.get("/me/campaigns").get_data(as_text=True)
    _rename(campaigns.get_by_slug(live.slug), "Cora Renamed Lantern")
    make_campaign(cora, "draft", title="Cora Draft Lantern")  # a draft's block reads its tiers: the page is rendered whole
    with cached_app.app_context():
        with counting() as statements:
            page = shelled.get("/me/campaigns").get_data(as_text=True)
    assert "Cora Renamed Lantern" in page and "Cora Draft Lantern" in page and 'data-group="drafts"' in page
    assert len(statements) > 2


def test_a_shell_hit_makes_no_orm_session_but_the_member_still_joins_one_when_asked(app, cached_app):
    """The member the login check loads joins the request's ORM session only when the request makes one:
    a page from its shell makes none; a request that changes the member (the language they choose)
    still saves it."""
    from flask import request

    from tests.factories import csrf_token

    made: list[tuple[str, bool]] = []

    @cached_app.teardown_request
    def _note(_error=None):
        made.append((request.path, db.session.registry.has()))

    _campaign, path, member = _member_on_a_live_campaign(cached_app, "Sessionless Lantern")
    member.get("/me/pledges")  # the login's flash message
    with cached_app.app_context():
        member.get(path)
        made.clear()
        assert "Sessionless Lantern" in member.get(path).get_data(as_text=True)
        assert made == [(path, False)]
        member.post("/language", data={"lang": "fr", "next": path, "csrf_token": csrf_token(member, path)})
    assert db.session.scalar(db.select(User.locale).filter_by(email="m@example.com")) == "fr"


def test_a_cached_pages_csrf_token_is_signed_once_per_session_and_still_checked(app, make_app):
    """A page from a shell reuses the CSRF token its session's token was signed into
    (caching._csrf_token): a second later the member's page carries the same token, which their form
    accepts; another member's differs and is refused in their session; once a time limit makes the
    signature old (a tenth of it), the token is signed again and still accepted."""
    import time

    from tests.factories import PASSWORD, csrf_token

    caching.clear()
    strict = make_app(PUBLIC_PAGE_CACHE_SECONDS=60, WTF_CSRF_ENABLED=True)
    campaign = make_campaign(make_user("creator@example.com"), "live", title="Token Lantern")
    path = f"/campaigns/{campaign.slug}"
    clients = {}
    for email, name in (("m@example.com", "Mina"), ("n@example.com", "Nils")):
        make_user(email, name=name)
        client = clients[name] = strict.test_client()
        client.post("/auth/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(client, "/auth/login")})
        client.get("/")  # the login's flash shown: the next pages come from the shell

    def tokens(name: str) -> set[str]:
        return set(re.findall(r'name="csrf_token"[^>]*value="([^"]+)"', clients[name].get(path).get_data(as_text=True)))

    tokens("Mina")
    signed = tokens("Mina")
    time.sleep(1.1)  # a token signed now would hold another time
    assert tokens("Mina") == signed and len(signed) == 1
    nils = tokens("Nils")
    assert nils.isdisjoint(signed)
    assert clients["Mina"].post(f"{path}/save", data={"csrf_token": next(iter(nils)), "back": "campaign"}).status_code == 400
    assert clients["Mina"].post(f"{path}/save", data={"csrf_token": next(iter(signed)), "back": "campaign"}).status_code == 302
    strict.config["WTF_CSRF_TIME_LIMIT"] = 5  # Mina's signature is over a second old: more than a tenth
    again = tokens("Mina")
    assert again != signed and len(again) == 1
    assert clients["Mina"].post(f"{path}/unsave", data={"csrf_token": next(iter(again)), "back": "campaign"}).status_code == 302
    caching.clear()


def test_a_members_own_parts_are_rendered_once_per_their_values(app, frozen_clock, cached_app):
    """A part whose arguments are all values (the campaign's facts, the viewer, whether the deadline is
    ahead) is rendered once per them, language and time zone (caching._part): two members who neither
    back nor saved the campaign share its two parts, each with their own CSRF token; saving gives one of
    them a part of their own at once, and the deadline passing takes the pledge button away."""
    from tests.factories import csrf_token

    campaign = make_campaign(make_user("creator@example.com"), "live", title="Parted Lantern")
    path = f"/campaigns/{campaign.slug}"
    clients = {}
    for email, name in (("m@example.com", "Mina"), ("n@example.com", "Nils")):
        make_user(email, name=name)
        clients[name] = cached_app.test_client()
        login(clients[name], email)
        clients[name].get("/me/pledges")  # the login's flash shown: the next pages come from the shell

    def page(name: str) -> str:
        with cached_app.app_context():
            return clients[name].get(path).get_data(as_text=True)

    def parts() -> set:
        return {key for key in caching._parts._items if "campaigns/_viewer.html" in key[0]}

    mina, nils = page("Mina"), page("Nils")
    assert all("Back this project" in text and "Remind me" in text for text in (mina, nils))
    assert len(parts()) == 2  # funding_action and save_box, rendered for Mina, Nils's the same
    tokens = {name: set(re.findall(r'name="csrf_token"[^>]*value="([^"]+)"', text)) for name, text in (("Mina", mina), ("Nils", nils))}
    assert len(tokens["Mina"]) == 1 and tokens["Mina"] != tokens["Nils"]  # each page its own session's token, the parts' too
    with cached_app.app_context():
        clients["Mina"].post(f"{path}/save", data={"csrf_token": csrf_token(clients["Mina"], path), "back": "campaign"})
        clients["Mina"].get("/me/pledges")  # the flash message
    assert "Remove from saved" in page("Mina") and "Remind me" in page("Nils")
    assert len(parts()) == 4  # Mina's two now her own: her viewer differs
    clock.advance(campaign.deadline - clock.utcnow() + timedelta(minutes=1))
    assert "Back this project" not in page("Nils") and "Remind me" not in page("Nils")
