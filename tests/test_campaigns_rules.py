"""Campaign rules after launch (SPEC §2), the sanitiser as the pages show it, and hostile cover uploads."""
from __future__ import annotations

import io
import os
import re
import struct
import zlib
from datetime import date
from html import unescape
from pathlib import Path

import pytest
from flask import current_app
from PIL import Image
from sqlalchemy import func, select, update

from app.campaigns import services
from app.campaigns.models import Campaign, CampaignEvent, Tier
from app.campaigns.services import CampaignError
from app.extensions import db
from tests.factories import login, make_user
from tests.localstripe_fixture import onboard
from tests.test_campaigns_helpers import (
    CAMPAIGN_FORM,
    TIER_FORM,
    build_campaign,
    field_block,
    form_of,
    moderator,
    parse_tags,
    snapshot,
    tier_input,
)


@pytest.fixture
def creator(app, client):
    user = make_user("creator@example.com", name="Cat Creator")
    login(client, user.email)
    return user


def _tier_form(tier: Tier, **changes) -> dict:
    """The tier form as the edit page fills it in, with `changes`."""
    values = {
        "title": tier.title,
        "description": tier.description,
        "amount": f"{tier.amount // 100}" if tier.amount % 100 == 0 else f"{tier.amount / 100:.2f}",
        "quantity_limit": "" if tier.quantity_limit is None else str(tier.quantity_limit),
        "estimated_delivery": tier.estimated_delivery.strftime("%Y-%m"),
        "shipping_note": tier.shipping_note,
    }
    values.update(changes)
    return values


def _claim(tier: Tier, claimed: int, limit: int | None = "same") -> None:
    """Pretend `claimed` backers hold the tier (the pledge service moves this column)."""
    values = {"claimed": claimed}
    if limit != "same":
        values["quantity_limit"] = limit
    db.session.execute(update(Tier).where(Tier.id == tier.id).values(**values))
    db.session.commit()


def _same(tier: Tier, **changes) -> services.TierInput:
    """The tier's own values as the form would send them back, with `changes`."""
    values = {name: getattr(tier, name) for name in ("title", "description", "amount", "quantity_limit", "estimated_delivery", "shipping_note")}
    return services.TierInput(**{**values, **changes})


def _tier(tier_id: int) -> Tier:
    db.session.expire_all()
    return db.session.get(Tier, tier_id)


# --- tiers after launch ---------------------------------------------------------------------------


def test_tiers_can_be_added_while_live(creator, client):
    campaign = build_campaign(creator, "live")
    response = client.post(f"/campaigns/{campaign.slug}/tiers/new", data=dict(TIER_FORM, title="Late bird"))
    assert response.status_code == 302
    assert "Late bird" in client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)


def test_a_tier_nobody_chose_can_be_edited_and_removed_while_live(creator, client):
    campaign = build_campaign(creator, "live", tiers=2)
    first, second = campaign.tiers
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{first.id}/edit", data=_tier_form(first, title="Renamed", amount="12.50"))
    assert response.status_code == 302
    assert (_tier(first.id).title, _tier(first.id).amount) == ("Renamed", 1250)
    assert client.post(f"/campaigns/{campaign.slug}/tiers/{second.id}/delete").status_code == 302
    assert _tier(second.id).deleted_at is not None
    page = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "Renamed" in page and second.title not in page
    visitor = current_app.test_client()
    assert second.title not in visitor.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    # a removed tier is gone for its routes too
    assert client.get(f"/campaigns/{campaign.slug}/tiers/{second.id}/edit").status_code == 404
    assert client.post(f"/campaigns/{campaign.slug}/tiers/{second.id}/delete").status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"title": "Another reward"},
        {"description": "Something else."},
        {"amount": "99"},
        {"estimated_delivery": "2031-01"},
        {"shipping_note": "Only in Europe"},
    ],
)
def test_a_tier_backers_chose_keeps_its_content(creator, client, change):
    campaign = build_campaign(creator, "live")
    tier = campaign.tiers[0]
    _claim(tier, 3, limit=5)
    before = snapshot()
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit", data=_tier_form(_tier(tier.id), **change))
    assert response.status_code == 422
    field = next(iter(change))
    assert "only its quantity can change" in field_block(response.get_data(as_text=True), field)
    assert snapshot() == before


def test_a_tier_backers_chose_cannot_be_removed(creator, client):
    campaign = build_campaign(creator, "live")
    tier = campaign.tiers[0]
    _claim(tier, 1)
    before = snapshot()
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{tier.id}/delete")
    assert response.status_code == 302
    assert "cannot be removed" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert snapshot() == before
    assert tier.title in client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)


@pytest.mark.parametrize(
    ("limit", "claimed", "typed", "ok", "stored"),
    [
        (5, 3, "10", True, 10),  # raised
        (5, 3, "", True, None),  # unlimited is the highest raise
        (5, 3, "4", True, 4),  # lowered, still above what is claimed
        (5, 3, "3", True, 3),  # down to exactly what is claimed: sold out
        (5, 3, "2", False, 5),  # below what is claimed
        (5, 5, "4", False, 5),
        (None, 3, "3", True, 3),  # an unlimited tier may get a limit that fits its backers
        (None, 3, "2", False, None),
    ],
)
def test_a_claimed_tiers_quantity_never_goes_below_what_is_claimed(creator, client, limit, claimed, typed, ok, stored):
    campaign = build_campaign(creator, "live")
    tier = campaign.tiers[0]
    _claim(tier, claimed, limit=limit)
    before = snapshot()
    response = client.post(f"/campaigns/{campaign.slug}/tiers/{tier.id}/edit", data=_tier_form(_tier(tier.id), quantity_limit=typed))
    if ok:
        assert response.status_code == 302
    else:
        assert response.status_code == 422
        assert f"{claimed} backers already hold this tier" in field_block(response.get_data(as_text=True), "quantity_limit")
        assert snapshot() == before
    assert (_tier(tier.id).quantity_limit, _tier(tier.id).claimed) == (stored, claimed)


def test_a_tier_claimed_meanwhile_is_not_rewritten(app):
    """The creator's page showed claimed == 0; a pledge claims it before the edit is saved."""
    creator = make_user()
    campaign = build_campaign(creator, "live")
    tier = campaign.tiers[0]
    assert tier.claimed == 0
    with db.engine.begin() as other:
        other.execute(update(Tier).where(Tier.id == tier.id).values(claimed=1))
    with pytest.raises(CampaignError):
        services.update_tier(campaign, creator, tier, tier_input(1, title="Rewritten"))
    with pytest.raises(CampaignError):
        services.update_tier(campaign, creator, _tier(tier.id), _same(tier, title="Rewritten"))
    assert (_tier(tier.id).title, _tier(tier.id).deleted_at) == ("Tier 1", None)
    with pytest.raises(CampaignError):
        services.delete_tier(campaign, creator, _tier(tier.id))
    assert _tier(tier.id).deleted_at is None


def test_a_quantity_lowered_under_a_concurrent_claim_is_refused(app):
    creator = make_user()
    campaign = build_campaign(creator, "live")
    tier = campaign.tiers[0]
    _claim(tier, 2, limit=5)
    tier = _tier(tier.id)
    with db.engine.begin() as other:  # a pledge lands after the creator's page was read
        other.execute(update(Tier).where(Tier.id == tier.id).values(claimed=4))
    with pytest.raises(CampaignError) as raised:
        services.update_tier(campaign, creator, tier, _same(tier, quantity_limit=3))
    assert raised.value.field == "quantity_limit"
    assert (_tier(tier.id).quantity_limit, _tier(tier.id).claimed) == (5, 4)


# --- campaign content after launch -----------------------------------------------------------------


LOCKED = {"goal": ("6000", 600000), "currency": ("EUR", "EUR"), "duration_days": ("45", 45), "title": ("Solar Lantern 2.0",) * 2,
          "blurb": ("Now brighter.",) * 2, "category": ("technology",) * 2}


@pytest.mark.parametrize("field", LOCKED)
def test_finding_5_live_campaign_locked_fields(creator, client, field):
    """Issue 14: what backers pledged on (title, blurb, category, goal, currency, duration) is fixed at launch."""
    campaign = build_campaign(creator, "live")
    before = snapshot()
    typed, stored = LOCKED[field]
    response = client.post(f"/campaigns/{campaign.slug}/edit", data=form_of(campaign, story="New story", **{field: typed}))
    assert response.status_code == 422
    page = unescape(response.get_data(as_text=True))
    assert "fixed since launch" in page and "New story" in page  # the refusal, and what was typed is kept
    assert snapshot() == before
    with pytest.raises(CampaignError) as raised:
        services.update_content(campaign, creator, services.CampaignInput(**{**_input(campaign), field: stored}))
    assert raised.value.field == field
    assert snapshot() == before


def test_the_live_edit_form_shows_the_locked_fields_as_text(creator, client):
    campaign = build_campaign(creator, "live")
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    locked = page.split('class="row mb-2 locked-content"')[1].split("</dl>")[0]
    assert "Solar Lantern" in locked and campaign.blurb in locked and "$5,000.00" in locked
    for name in ("title", "blurb", "category", "goal", "currency", "duration_days"):
        assert not re.search(rf'<(input|select)(?![^>]*type="hidden")[^>]*name="{name}"', page), name
    for name in ("story", "risks", "cover"):
        assert re.search(rf'<(input|textarea)[^>]*name="{name}"', page), name


def _input(campaign: Campaign) -> dict:
    return {k: getattr(campaign, k) for k in ("title", "blurb", "category", "goal", "currency", "duration_days", "story", "risks")}


def test_the_live_edit_form_shows_the_fixed_fields_without_inputs_to_change_them(creator, client):
    campaign = build_campaign(creator, "live")
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert "fixed since launch" in page and "$5,000.00" in page
    assert '<select class="form-select" id="currency"' not in page


def test_story_risks_and_cover_change_while_live_on_the_record(creator, client, app):
    campaign = build_campaign(creator, "live")
    deadline = campaign.deadline
    data = form_of(campaign, story="## Update\n\nBrighter LEDs.", risks="Chip shortage.")
    data["cover"] = (io.BytesIO(_png()), "cover.png")
    response = client.post(f"/campaigns/{campaign.slug}/edit", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign.id)
    assert (campaign.title, campaign.story, campaign.risks) == ("Solar Lantern", data["story"], "Chip shortage.")
    assert campaign.cover and campaign.deadline == deadline and campaign.goal == 500_000
    page = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "<h2>Update</h2>" in page and "Chip shortage." in page and campaign.cover in page
    # each change after launch is an audit row that moderators read in the history
    edit = db.session.scalars(select(CampaignEvent).where(CampaignEvent.action == "edit")).one()
    assert (edit.from_state, edit.to_state, edit.actor_id, edit.note) == ("live", "live", creator.id, "story, risks, cover")
    moderator = make_user("mod2@example.com", moderator=True)
    reviewer = app.test_client()
    login(reviewer, moderator.email)
    history = reviewer.get(f"/moderation/campaigns/{campaign.slug}").get_data(as_text=True)
    row = re.search(r'<tr class="history-row" data-action="edit">(.*?)</tr>', history, re.S).group(1)
    assert "edited after launch" in row and "Story, Risks and challenges, Cover image" in row
    # saving again without a change writes nothing
    client.post(f"/campaigns/{campaign.slug}/edit", data=form_of(campaign))
    assert len(db.session.scalars(select(CampaignEvent).where(CampaignEvent.action == "edit")).all()) == 1


# --- the sanitiser, through the pages ------------------------------------------------------------


PAYLOADS = [
    '<script>alert("xss")</script>',
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "'><iframe src=javascript:alert(1)></iframe>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    '![x](x" onerror="alert(1))',
    "<details open ontoggle=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<base href="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<form action="https://evil.example"><button>go</button></form>',
    "<object data=javascript:alert(1)>",
    "<<script>script>alert(1)<</script>/script>",
    "javascript:alert(1)",
    "{{ config }}{% raw %}",
]
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "poster", "background", "xlink:href", "srcset"}
_FORBIDDEN_TAGS = {"iframe", "svg", "math", "object", "embed", "base", "style", "details", "frame", "applet", "template"}


def _assert_inert(page: str, where: str) -> None:
    """Nothing a creator wrote can run: no foreign tag, no handler, no script URL, no inline script."""
    assert "test-secret" not in page and "SQLALCHEMY" not in page  # text is never a template
    for tag, attrs in parse_tags(page):
        names = {name.lower() for name, _value in attrs}
        assert tag not in _FORBIDDEN_TAGS, (where, tag, attrs)
        assert not any(name.startswith("on") for name in names), (where, tag, attrs)
        if tag == "script":
            assert dict(attrs).get("src", "").startswith(("/static/", "/bootstrap/")), (where, attrs)
        if tag == "meta":
            assert "http-equiv" not in names, (where, attrs)
        if tag == "form":
            assert dict(attrs).get("action", "/").startswith("/"), (where, attrs)
        for name, value in attrs:
            if name.lower() in _URL_ATTRIBUTES and value:
                compact = "".join(ch for ch in value if ch > " ").lower()
                assert not compact.startswith(("javascript:", "data:", "vbscript:")), (where, tag, attrs)
                if tag in ("img", "script", "link") and dict(attrs).get("rel") != "canonical":
                    assert compact.startswith("/"), (where, tag, attrs)
                elif tag == "link":  # the canonical address is absolute, from BASE_URL
                    assert compact.startswith(("http://localhost/", "https://")), (where, tag, attrs)
    lowered = page.lower()
    assert "<script>alert" not in lowered and "<script>script" not in lowered


def _short(payload: str, limit: int) -> str:
    return payload[:limit]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_creator_text_is_never_executable(app, client, payload):
    creator = make_user("creator@example.com", name=_short(payload, 80))
    login(client, creator.email)
    form = dict(CAMPAIGN_FORM, title=_short(payload, 80), blurb=_short(payload, 135), story=f"{payload}\n\n{payload}", risks=payload)
    response = client.post("/campaigns/new", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    slug = db.session.scalar(select(Campaign.slug))
    tier = dict(TIER_FORM, title=_short(payload, 80), description=payload, shipping_note=_short(payload, 200))
    assert client.post(f"/campaigns/{slug}/tiers/new", data=tier).status_code == 302
    pages = {"edit": f"/campaigns/{slug}/edit", "preview": f"/campaigns/{slug}/preview", "mine": "/me/campaigns"}
    for name, path in pages.items():
        _assert_inert(client.get(path).get_data(as_text=True), name)
    tier_id = db.session.scalar(select(Tier.id))
    _assert_inert(client.get(f"/campaigns/{slug}/tiers/{tier_id}/edit").get_data(as_text=True), "tier edit")
    # live and featured: on every public page
    assert client.post(f"/campaigns/{slug}/submit").status_code == 302
    campaign = db.session.scalar(select(Campaign))
    services.decide(campaign, moderator(), "approve")
    onboard(campaign.creator)
    assert client.post(f"/campaigns/{slug}/launch").status_code == 302
    services.set_featured(db.session.scalar(select(Campaign)), moderator(), True)
    visitor = current_app.test_client()
    public = {
        "campaign": f"/campaigns/{slug}",
        "home": "/",
        "browse": "/campaigns",
        "search": "/campaigns?q=" + _short(payload, 20).replace("&", "%26").replace("#", "%23"),
    }
    for name, path in public.items():
        response = visitor.get(path)
        assert response.status_code == 200, name
        page = response.get_data(as_text=True)
        _assert_inert(page, name)
        if name != "search":
            assert slug in page, name  # the campaign is really on the page being checked


def test_plain_fields_show_markup_as_text(app, client):
    """A title is text: what the creator typed is shown, escaped, not dropped."""
    creator = make_user()
    campaign = build_campaign(creator, "live", title="<b>Bold</b> & <i>brave</i>")
    page = current_app.test_client().get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; &lt;i&gt;brave&lt;/i&gt;" in page and "<b>Bold</b>" not in page


def test_story_markdown_is_rendered_and_links_are_marked(app, client):
    campaign = build_campaign(make_user(), "live", story="# Title\n\n**bold** [site](https://example.com)")
    page = current_app.test_client().get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert "<h2>Title</h2>" in page and "<strong>bold</strong>" in page
    assert '<a href="https://example.com" rel="nofollow noopener ugc">site</a>' in page


# --- hostile uploads ---------------------------------------------------------------------------


def _png(size=(64, 48), color=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb(width=30_000, height=30_000) -> bytes:
    """A valid-looking PNG claiming 900 megapixels, a few hundred bytes long."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * 64
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(row * 4, 9)) + _chunk(b"IEND", b"")


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "GIF")
    return out.getvalue()


HOSTILE = {
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(1)</script></svg>', "cover.svg", "not a JPEG, PNG or WebP"),
    "svg named png": (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "cover.png", "not a JPEG, PNG or WebP"),
    "text named png": (b"just some text, honestly a picture", "cover.png", "not a JPEG, PNG or WebP"),
    "html named jpg": (b"<html><script>alert(1)</script></html>", "cover.jpg", "not a JPEG, PNG or WebP"),
    "gif": (_gif(), "cover.gif", "not a JPEG, PNG or WebP"),
    "empty": (b"", "cover.png", "The file is empty"),
    "oversized": (b"\x89PNG\r\n\x1a\n" + os.urandom(5 * 1024 * 1024 + 1024), "cover.png", "larger than 5 MB"),
    "decompression bomb": (_bomb(), "bomb.png", "too many pixels"),
    "truncated png": (_png((400, 300))[:200], "cover.png", "could not be read"),
}


def _covers() -> set[str]:
    folder = Path(current_app.config["UPLOAD_FOLDER"]) / "covers"
    return set(os.listdir(folder)) if folder.exists() else set()


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_cover_is_refused_on_a_new_campaign(creator, client, case):
    data, name, message = HOSTILE[case]
    before, files = snapshot(), _covers()
    response = client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, cover=(io.BytesIO(data), name)), content_type="multipart/form-data")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in field_block(page, "cover")
    assert 'value="Solar Lantern"' in page  # what was typed is kept
    assert snapshot() == before and _covers() == files
    assert db.session.scalar(select(func.count()).select_from(Campaign)) == 0


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_cover_does_not_replace_the_current_one(creator, client, case):
    data, name, message = HOSTILE[case]
    campaign = build_campaign(creator)
    response = client.post(f"/campaigns/{campaign.slug}/edit", data=dict(CAMPAIGN_FORM, cover=(io.BytesIO(_png()), "ok.png")), content_type="multipart/form-data")
    assert response.status_code == 302
    before, files = snapshot(), _covers()
    response = client.post(f"/campaigns/{campaign.slug}/edit", data=dict(CAMPAIGN_FORM, title="Changed", cover=(io.BytesIO(data), name)), content_type="multipart/form-data")
    assert response.status_code == 422 and message in field_block(response.get_data(as_text=True), "cover")
    assert snapshot() == before and _covers() == files


def test_an_upload_over_the_request_limit_is_a_clear_413(creator, client):
    before = snapshot()
    big = os.urandom(current_app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, cover=(io.BytesIO(big), "big.png")), content_type="multipart/form-data")
    assert response.status_code == 413 and "too large" in response.get_data(as_text=True)
    assert snapshot() == before


def test_a_good_png_is_re_encoded_and_served_safely(creator, client):
    original = _png((800, 600)) + b"<html><script>alert(1)</script></html>"  # a PNG/HTML polyglot
    response = client.post("/campaigns/new", data=dict(CAMPAIGN_FORM, cover=(io.BytesIO(original), "cover.png")), content_type="multipart/form-data")
    assert response.status_code == 302
    name = db.session.scalar(select(Campaign.cover))
    assert name.endswith(".jpg") and len(name) == 36
    served = client.get(f"/uploads/covers/{name}")
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers.get("Content-Disposition", "inline").startswith("inline")
    body = served.get_data()
    assert body.startswith(b"\xff\xd8\xff") and b"<script" not in body and body != original
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "JPEG" and image.size == (800, 600) and not image.getexif()
    # the card-sized variant exists too, and a visitor gets the same
    assert current_app.test_client().get(f"/uploads/covers/{name}").status_code == 200


def test_a_cover_is_optional_and_can_stay_when_editing(creator, client):
    campaign = build_campaign(creator)
    client.post(f"/campaigns/{campaign.slug}/edit", data=dict(CAMPAIGN_FORM, cover=(io.BytesIO(_png()), "ok.png")), content_type="multipart/form-data")
    cover = _cover_of(campaign.id)
    assert cover
    assert client.post(f"/campaigns/{campaign.slug}/edit", data=dict(CAMPAIGN_FORM, title="No new file")).status_code == 302
    assert _cover_of(campaign.id) == cover


def _cover_of(campaign_id: int) -> str | None:
    db.session.expire_all()
    return db.session.get(Campaign, campaign_id).cover


def test_delivery_dates_survive_the_round_trip(creator, client):
    campaign = build_campaign(creator, tiers=0)
    assert client.post(f"/campaigns/{campaign.slug}/tiers/new", data=dict(TIER_FORM, estimated_delivery="2031-12")).status_code == 302
    assert db.session.scalar(select(Tier.estimated_delivery)) == date(2031, 12, 1)


def test_a_cover_sent_with_a_refused_edit_is_not_kept(creator, client):
    campaign = build_campaign(creator, "live")
    before, files = snapshot(), _covers()
    data = dict(CAMPAIGN_FORM, goal="9999", cover=(io.BytesIO(_png()), "ok.png"))
    response = client.post(f"/campaigns/{campaign.slug}/edit", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    assert snapshot() == before and _covers() == files
