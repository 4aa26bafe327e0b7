"""Sharing a campaign (Open Graph, Twitter cards, share links) and saved campaigns ("Remind me"):
saving and removing with CSRF and a login, the reminder 48 hours before the deadline, the pledges page."""
from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlalchemy import func, select

from app import caching, clock
from app.accounts.models import User
from app.community import follows
from app.community.models import CampaignFollow
from app.extensions import db
from tests.community_helpers import back, client_for, counting, make_world, outbox
from tests.factories import csrf_token, login, make_campaign, make_user


class _Head(HTMLParser):
    """The page's <meta> tags and <a> links, with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: list[dict[str, str]] = []
        self._link: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "meta" and ("property" in attrs or "name" in attrs):
            self.meta[attrs.get("property") or attrs["name"]] = attrs.get("content", "")
        if tag == "a":
            self._link = {**attrs, "text": ""}
            self.links.append(self._link)

    def handle_data(self, data):
        if self._link is not None:
            self._link["text"] += data

    def handle_endtag(self, tag):
        if tag == "a":
            self._link = None


def _parse(html: str) -> _Head:
    parser = _Head()
    parser.feed(html)
    return parser


def _follows(campaign_id: int | None = None) -> int:
    query = select(func.count()).select_from(CampaignFollow)
    if campaign_id is not None:
        query = query.where(CampaignFollow.campaign_id == campaign_id)
    return db.session.scalar(query) or 0


# --- sharing ---------------------------------------------------------------------------------

def test_open_graph_and_twitter_tags_use_absolute_addresses_from_base_url(app, make_app):
    site = make_app(BASE_URL="https://crowd.example.org", TRUSTED_HOSTS=["localhost", "crowd.example.org"])
    with site.app_context():
        campaign = make_campaign(make_user(), "live", title="Solar Lantern", blurb="Light & warmth for <everyone>")
        campaign.cover = "0123456789abcdef0123456789abcdef.webp"
        db.session.commit()
        slug = campaign.slug
    page = site.test_client().get(f"/campaigns/{slug}")  # asked for on localhost: the tags still say BASE_URL
    assert page.status_code == 200
    meta = _parse(page.get_data(as_text=True)).meta
    assert meta["og:title"] == meta["twitter:title"] == "Solar Lantern"
    assert meta["og:description"] == meta["twitter:description"] == "Light & warmth for <everyone>"
    assert meta["og:url"] == f"https://crowd.example.org/campaigns/{slug}"
    assert meta["og:image"] == meta["twitter:image"] == "https://crowd.example.org/uploads/covers/0123456789abcdef0123456789abcdef.webp"
    assert meta["og:type"] == "website" and meta["twitter:card"] == "summary_large_image"
    assert f'<link rel="canonical" href="https://crowd.example.org/campaigns/{slug}">' in page.get_data(as_text=True)
    assert "localhost" not in "".join(meta.values())


def test_without_a_cover_the_card_is_a_summary_and_has_no_image(app, client):
    campaign = make_campaign(make_user(), "live")
    meta = _parse(client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)).meta
    assert meta["twitter:card"] == "summary" and "og:image" not in meta and "twitter:image" not in meta
    assert meta["og:url"].startswith(app.config["BASE_URL"] + "/campaigns/")


def test_share_links_are_plain_encoded_links_opening_in_a_new_tab(app, client):
    campaign = make_campaign(make_user(), "live", title="Tea & Toast?", blurb="A kettle for #everyone")
    html = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    url = f"{app.config['BASE_URL']}/campaigns/{campaign.slug}"
    encoded = "http%3A%2F%2F" + url.removeprefix("http://").replace("/", "%2F").replace(":", "%3A")
    links = {link["class"]: link for link in _parse(html).links if link.get("class", "").startswith("share-")}
    expected_hosts = {"share-x": "twitter.com", "share-facebook": "www.facebook.com", "share-linkedin": "www.linkedin.com",
                      "share-reddit": "www.reddit.com", "share-whatsapp": "wa.me"}
    for key, host in expected_hosts.items():
        link = links[key]
        assert urlsplit(link["href"]).scheme == "https" and urlsplit(link["href"]).netloc == host
        assert encoded in link["href"], (key, link["href"])  # the whole address encoded, "/" and ":" too
        assert "&amp;" not in link["href"] and " " not in link["href"]
        assert link["target"] == "_blank" and link["rel"] == "noopener noreferrer"
        assert "(opens in a new tab)" in link["text"]
    x_query = parse_qs(urlsplit(links["share-x"]["href"]).query)
    assert x_query == {"url": [url], "text": ["Tea & Toast?"]}  # "&" and "?" in the title are encoded
    mail = links["share-email"]["href"]
    assert mail.startswith("mailto:?subject=Tea%20%26%20Toast%3F&body=")
    assert unquote(mail.split("body=")[1]) == f"A kettle for #everyone\n\n{url}"
    # Copying: a read-only field anyone can select; the button only appears with the script.
    assert re.search(r'<input id="share-url" class="form-control share-url" type="url" value="[^"]+" readonly>', html)
    assert re.search(r'<button type="button" class="btn btn-outline-secondary share-copy" data-copy-from="share-url"[^>]* hidden>', html)
    assert '<script src="/static/js/share.js"></script>' in html
    scripts = re.findall(r"<script([^>]*)>", html)
    assert all("src=" in attrs for attrs in scripts)  # no inline script (the CSP has no unsafe-inline)
    assert all(urlsplit(src).netloc == "" for src in re.findall(r'<script src="([^"]+)"', html))  # nothing third-party


def test_the_preview_of_a_draft_has_no_share_panel_nor_cards(app):
    creator = make_user("creator@example.com")
    draft = make_campaign(creator, "draft")
    client = client_for(app, "creator@example.com")
    html = client.get(f"/campaigns/{draft.slug}/preview").get_data(as_text=True)
    assert "share-panel" not in html and "og:title" not in html and "save-campaign" not in html


# --- saving a campaign -----------------------------------------------------------------------

def test_a_visitor_sees_a_login_link_and_the_cached_page_holds_nothing_of_a_member(app, make_app):
    cached = make_app(PUBLIC_PAGE_CACHE_SECONDS=60)
    caching.clear()
    with cached.app_context():
        campaign = make_world()
        slug = campaign.slug
    visitor = cached.test_client()
    first = visitor.get(f"/campaigns/{slug}").get_data(as_text=True)
    assert "Log in to save this campaign" in first and f"/auth/login?next=/campaigns/{slug}" in first
    assert "Remind me" not in first and "csrf_token" not in first
    member = cached.test_client()
    login(member, "member@example.com")
    own = member.get(f"/campaigns/{slug}").get_data(as_text=True)
    assert "Remind me" in own and "Log in to save" not in own
    assert cached.test_client().get(f"/campaigns/{slug}").get_data(as_text=True) == first
    caching.clear()


def test_saving_needs_a_login_and_a_csrf_token(app, make_app):
    campaign = make_world()
    strict = make_app(WTF_CSRF_ENABLED=True)
    anonymous = strict.test_client()
    assert anonymous.post(f"/campaigns/{campaign.slug}/save", data={"back": "campaign"}).status_code == 400
    response = anonymous.post(f"/campaigns/{campaign.slug}/save",
                              data={"back": "campaign", "csrf_token": csrf_token(anonymous, "/auth/login")})
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    member = strict.test_client()
    login(member, "member@example.com", csrf_token=csrf_token(member, "/auth/login"))
    assert member.post(f"/campaigns/{campaign.slug}/save", data={"back": "campaign"}).status_code == 400
    assert _follows() == 0
    token = csrf_token(member, f"/campaigns/{campaign.slug}")
    response = member.post(f"/campaigns/{campaign.slug}/save", data={"back": "campaign", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/campaigns/{campaign.slug}#save")
    assert _follows(campaign.id) == 1
    assert member.post(f"/campaigns/{campaign.slug}/unsave", data={"back": "saved"}).status_code == 400
    assert _follows(campaign.id) == 1
    response = member.post(f"/campaigns/{campaign.slug}/unsave", data={"back": "saved", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/me/pledges#saved")
    assert _follows() == 0


def _saved_version(email: str) -> int:
    """The member's `saved_version` (the key of their saved list on a cached pledges page)."""
    return db.session.scalar(select(User.saved_version).where(User.email == email))


def test_save_twice_then_remove_and_the_page_says_which(app):
    campaign = make_world()
    member = client_for(app, "member@example.com")
    path = f"/campaigns/{campaign.slug}"
    version = _saved_version("member@example.com")
    member.post(f"{path}/save", data={"back": "campaign"})
    page = member.get(path).get_data(as_text=True)
    assert "Saved ✓" in page and "Remove from saved" in page and "Remind me" not in page
    assert "We will email you 48 hours before the campaign ends." in page  # the flash
    assert _saved_version("member@example.com") == version + 1  # the list changed
    member.post(f"{path}/save", data={"back": "campaign"})
    assert _follows(campaign.id) == 1 and _saved_version("member@example.com") == version + 1  # it did not
    member.post(f"{path}/unsave", data={"back": "campaign"})
    page = member.get(path).get_data(as_text=True)
    assert _follows() == 0 and "Remind me" in page and _saved_version("member@example.com") == version + 2
    member.post(f"{path}/unsave", data={"back": "campaign"})
    assert _saved_version("member@example.com") == version + 2  # nothing was removed
    # "back" names one of two pages; anything else goes back to the campaign (never elsewhere)
    response = member.post(f"{path}/save", data={"back": "https://evil.example/"})
    assert response.headers["Location"].endswith(f"{path}#save")


def test_only_live_campaigns_and_never_ones_own(app):
    creator = make_user("creator@example.com")
    live = make_campaign(creator, "live")
    ended = make_campaign(creator, "successful")
    draft = make_campaign(creator, "draft")
    make_user("member@example.com")
    own = client_for(app, "creator@example.com")
    own.post(f"/campaigns/{live.slug}/save", data={})
    assert _follows() == 0
    assert "You cannot save your own campaign." in own.get(f"/campaigns/{live.slug}").get_data(as_text=True)
    assert "Remind me" not in own.get(f"/campaigns/{live.slug}").get_data(as_text=True)
    member = client_for(app, "member@example.com")
    member.post(f"/campaigns/{ended.slug}/save", data={})
    assert _follows() == 0
    page = member.get(f"/campaigns/{ended.slug}").get_data(as_text=True)
    assert "Only a live campaign can be saved." in page and "Remind me" not in page
    assert member.post(f"/campaigns/{draft.slug}/save", data={}).status_code == 404  # not visible to them
    assert _follows() == 0
    with pytest.raises(follows.CommunityError):
        follows.follow(ended, make_user())


def test_saved_campaigns_on_the_pledges_page_in_one_query(app):
    member = make_user("member@example.com")
    creator = make_user()
    campaigns = [make_campaign(creator, "live", title=f"Saved {n}", duration_days=10 + n) for n in range(4)]
    client = client_for(app, "member@example.com")
    page = client.get("/me/pledges").get_data(as_text=True)
    assert "Saved campaigns" in page and "Press “Remind me” on a live campaign" in page
    for campaign in campaigns[:2]:
        follows.follow(campaign, member)
    client.get("/me/pledges")
    with counting() as few:
        page = client.get("/me/pledges").get_data(as_text=True)
    assert page.index("Saved 0") < page.index("Saved 1")  # the soonest deadline first
    for campaign in campaigns[2:]:
        follows.follow(campaign, member)
    with counting() as more:
        page = client.get("/me/pledges").get_data(as_text=True)
    assert all(f"Saved {n}" in page for n in range(4))
    assert len(more) == len(few)
    response = client.post(f"/campaigns/{campaigns[0].slug}/unsave", data={"back": "saved"}, follow_redirects=True)
    assert "Removed from your saved campaigns." in response.get_data(as_text=True)
    assert "Saved 0" not in response.get_data(as_text=True)


# --- the reminder ----------------------------------------------------------------------------

def test_the_reminder_goes_once_48_hours_before_the_deadline(app, frozen_clock, runner):
    campaign = make_world(("saver@example.com", "Backer Bea"))  # Bea backs it as well as saving it
    saver, quiet = make_user("keen@example.com", name="Keen Kim"), make_user("quiet@example.com")
    quiet.email_reminders = False
    db.session.commit()
    for email in ("keen@example.com", "quiet@example.com", "saver@example.com", "member@example.com"):
        follows.follow(campaign, db.session.scalar(select(type(saver)).where(type(saver).email == email)))
    assert campaign.deadline == frozen_clock + timedelta(days=30)
    assert follows.remind_due() == 0
    clock.advance(campaign.deadline - clock.utcnow() - timedelta(hours=48, minutes=1))
    assert follows.remind_due() == 0  # a minute early
    clock.advance(timedelta(minutes=1))
    assert follows.remind_due() == 2  # Kim and Mia: not Quinn (reminders off), not Bea (a backer)
    mails = outbox("campaign_reminder")
    assert sorted(m.recipient for m in mails) == ["keen@example.com", "member@example.com"]
    body = mails[0].body
    assert "ends in less than two days" in mails[0].subject
    assert f"{app.config['BASE_URL']}/campaigns/{campaign.slug}" in body and f"{app.config['BASE_URL']}/me/pledges#saved" in body
    assert "Stop reminders for saved campaigns with one click" in body
    assert follows.remind_due() == 0
    clock.advance(timedelta(hours=47))
    result = runner.invoke(args=["community", "remind"])
    assert "0 reminders queued" in result.output
    assert len(outbox("campaign_reminder")) == 2
    clock.advance(timedelta(hours=2))  # past the deadline: nobody else is reminded
    assert follows.remind_due() == 0


def test_a_member_who_backs_before_the_mark_is_not_reminded(app, frozen_clock):
    campaign = make_world()
    member = make_user("late@example.com")
    follows.follow(campaign, member)
    back(campaign, member)
    clock.advance(campaign.deadline - clock.utcnow() - timedelta(hours=47))
    assert follows.remind_due() == 0 and outbox("campaign_reminder") == []


def test_a_canceled_campaign_reminds_no_one(app, frozen_clock):
    creator = make_user("creator@example.com")
    campaign = make_campaign(creator, "live")
    follows.follow(campaign, make_user())
    from app.campaigns import services as campaigns

    campaigns.cancel(campaign, creator)
    clock.advance(campaign.deadline - clock.utcnow() - timedelta(hours=47))
    assert follows.remind_due() == 0


def test_the_reminder_is_in_the_members_language(app, frozen_clock):
    campaign = make_world()
    member = make_user("fr@example.com")
    member.locale = "fr"
    db.session.commit()
    follows.follow(campaign, member)
    clock.advance(campaign.deadline - clock.utcnow() - timedelta(hours=47))
    assert follows.remind_due() == 1
    mail = outbox("campaign_reminder")[0]
    assert "Bonjour" in mail.body and "ends in less" not in mail.subject


def test_the_reminder_setting_and_its_unsubscribe_link(app):
    from app.notifications import services as mail

    user = make_user("reader@example.com")
    client = client_for(app, "reader@example.com")
    page = client.get("/auth/notifications").get_data(as_text=True)
    assert "Reminders for campaigns I saved" in page
    assert "Campaigns submitted for review" not in page  # a moderator's choice only
    client.post("/auth/notifications", data={"email_updates": "y", "email_new_backers": "each"})
    db.session.refresh(user)
    assert user.email_reminders is False and user.email_updates is True
    user.email_reminders = True
    db.session.commit()
    anonymous = app.test_client()
    path = f"/auth/unsubscribe/{mail.unsubscribe_token(user.id, 'reminders')}"
    assert "reminders for campaigns you saved" in anonymous.get(path).get_data(as_text=True)
    assert anonymous.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    db.session.refresh(user)
    assert user.email_reminders is False and user.email_updates is True
