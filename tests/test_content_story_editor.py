"""Issue 18, defect 7: the story editor — live preview, pictures uploaded into the story, video embeds
from an allow-list, and a category nobody chooses silently."""
from __future__ import annotations

import io
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import current_app
from PIL import Image
from sqlalchemy import select

from app import clock
from app.campaigns import services as campaigns
from app.campaigns.models import Campaign
from app.content.markdown import render_markdown, video_embed
from app.extensions import db
from app.security import VIDEO_FRAME_ORIGINS
from tests.factories import PASSWORD, csrf_token, login, make_campaign, make_user

PREVIEW = "/campaigns/preview-markdown"
YOUTUBE_PLAYER = "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
VIMEO_PLAYER = "https://player.vimeo.com/video/76979871"


@pytest.fixture
def creator(app, client):
    user = make_user("creator@example.com")
    login(client, "creator@example.com")
    return user


def _picture(fmt: str, size=(640, 480)) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, (200, 40, 40))
    image.paste((20, 60, 200), (0, 0, size[0] // 2, size[1] // 2))
    image.save(out, fmt)
    return out.getvalue()


def _upload(client, slug: str, data: bytes, name: str):
    return client.post(f"/campaigns/{slug}/story-images", data={"image": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _story_files() -> set[str]:
    folder = Path(current_app.config["UPLOAD_FOLDER"]) / "story"
    return set(os.listdir(folder)) if folder.exists() else set()


# --- preview ------------------------------------------------------------------------------------

def test_preview_is_what_the_page_renders_and_sanitised(creator, client):
    text = ("# Hello\n\n<script>alert(1)</script>\n\n[x](javascript:alert(2)) **bold**\n\n"
            "https://youtu.be/dQw4w9WgXcQ\n\n<iframe src=\"https://evil.example/\"></iframe>")
    response = client.post(PREVIEW, data={"text": text})
    assert response.status_code == 200 and response.mimetype == "application/json"
    html = response.json["html"]
    assert "<script" not in html and 'href="javascript' not in html
    assert re.findall(r"<iframe [^>]*>", html) == [re.search(r"<iframe [^>]*>", str(render_markdown("https://youtu.be/dQw4w9WgXcQ"))).group(0)]
    assert "<h2>Hello</h2>" in html and "<strong>bold</strong>" in html and f'src="{YOUTUBE_PLAYER}"' in html
    # the page shows exactly the same HTML
    campaign = make_campaign(creator, "live", story=text)
    page = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert html == str(render_markdown(text)) and html in page


def test_preview_of_nothing_and_of_too_much(creator, client):
    assert client.post(PREVIEW, data={"text": ""}).json == {"html": ""}
    response = client.post(PREVIEW, data={"text": "x" * 50_001})
    assert response.status_code == 422 and "50000" in response.json["error"]


def test_preview_needs_a_login(client):
    response = client.post(PREVIEW, data={"text": "hi"})
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_preview_and_upload_need_the_csrf_token(make_app):
    strict = make_app(WTF_CSRF_ENABLED=True)
    client = strict.test_client()
    with strict.app_context():
        user = make_user("strict@example.com")
        campaign = make_campaign(user, "draft")
        slug = campaign.slug
    token = csrf_token(client, "/auth/login")
    client.post("/auth/login", data={"email": "strict@example.com", "password": PASSWORD, "csrf_token": token})
    assert client.post(PREVIEW, data={"text": "hi"}).status_code == 400
    assert _upload(client, slug, _picture("PNG"), "a.png").status_code == 400
    token = csrf_token(client, f"/campaigns/{slug}/edit")
    # the script sends the page's token in a header (and in the form data)
    response = client.post(PREVIEW, data={"text": "*hi*"}, headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.json["html"] == "<p><em>hi</em></p>\n"
    response = client.post(f"/campaigns/{slug}/story-images", data={"image": (io.BytesIO(_picture("PNG")), "a.png")},
                           headers={"X-CSRFToken": token}, content_type="multipart/form-data")
    assert response.status_code == 201


def test_the_editor_page_has_the_preview_and_tools(creator, client):
    campaign = make_campaign(creator, "draft", story="Some **story**.")
    page = client.get(f"/campaigns/{campaign.slug}/edit").get_data(as_text=True)
    assert 'aria-live="polite"' in page and 'id="story-preview-heading"' in page
    assert "<p>Some <strong>story</strong>.</p>" in page  # the preview shows the saved story without JavaScript
    assert f'data-upload-url="/campaigns/{campaign.slug}/story-images"' in page
    assert '<label class="form-label" for="story-image-alt">' in page and "js/story_editor.js" in page
    new = client.get("/campaigns/new").get_data(as_text=True)
    assert 'aria-live="polite"' in new and "data-upload-url" not in new  # no campaign yet to hold pictures


# --- pictures in the story ------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_real_picture_is_re_encoded_stored_and_served(creator, client, fmt):
    campaign = make_campaign(creator, "draft")
    original = _picture(fmt) + b"<?php system($_GET['c']); ?>"
    response = _upload(client, campaign.slug, original, f"photo.{fmt.lower()}")
    assert response.status_code == 201
    url = response.json["url"]
    assert re.fullmatch(r"/uploads/story/[0-9a-f]{32}\.jpg", url)
    served = current_app.test_client().get(url)  # anyone: the story is public once live
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    body = served.get_data()
    assert body != original and b"<?php" not in body
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "JPEG" and image.size == (640, 480)
    assert not any(".thumb." in name for name in _story_files())  # no card-sized variant for story pictures
    # the Markdown the script inserts shows the picture, on the page and in the preview
    html = str(render_markdown(f"![A red lamp]({url})"))
    assert f'<img src="{url}" alt="A red lamp"' in html


HOSTILE = {
    "php named png": (b"<?php system($_GET['cmd']); ?>", "shell.png", "not a JPEG, PNG or WebP"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(1)</script></svg>', "a.svg",
            "not a JPEG, PNG or WebP"),
    "too big": (b"\x89PNG\r\n\x1a\n" + os.urandom(5 * 1024 * 1024 + 1024), "big.png", "larger than 5 MB"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_upload_is_refused_and_nothing_stored(creator, client, case):
    data, name, message = HOSTILE[case]
    campaign = make_campaign(creator, "draft")
    before = _story_files()
    response = _upload(client, campaign.slug, data, name)
    assert response.status_code == 422 and message in response.json["error"]
    assert _story_files() == before


def test_no_file_is_a_clear_refusal(creator, client):
    campaign = make_campaign(creator, "draft")
    response = client.post(f"/campaigns/{campaign.slug}/story-images", data={}, content_type="multipart/form-data")
    assert response.status_code == 422 and "Choose a picture" in response.json["error"]


def test_only_the_creator_uploads_into_a_story(app, client):
    owner = make_user("owner@example.com")
    draft, live = make_campaign(owner, "draft"), make_campaign(owner, "live")
    make_user("other@example.com")
    login(client, "other@example.com")
    before = _story_files()
    assert _upload(client, draft.slug, _picture("PNG"), "a.png").status_code == 404  # a draft is not theirs to see
    assert _upload(client, live.slug, _picture("PNG"), "a.png").status_code == 403
    assert _story_files() == before


def test_no_upload_once_the_story_is_frozen(creator, client):
    campaign = make_campaign(creator, "submitted")
    response = _upload(client, campaign.slug, _picture("PNG"), "a.png")
    assert response.status_code == 409 and "cannot be edited" in response.json["error"]


def test_served_names_are_checked(client):
    for name in ("../covers/x.jpg", "0" * 32 + ".png", "0" * 32 + ".thumb.jpg", "0" * 32 + ".jpg"):
        assert client.get(f"/uploads/story/{name}").status_code == 404


def test_only_our_own_pictures_render(app):
    ours = "/uploads/story/" + "ab" * 16 + ".jpg"
    html = str(render_markdown(f"![ours]({ours}) ![theirs](https://tracker.example/pixel.gif) "
                               f"![sneaky](/uploads/story/{'ab' * 16}.jpg/../../x) ![svg](/uploads/story/{'ab' * 16}.svg)"))
    assert html.count("<img") == 1 and f'src="{ours}"' in html and "tracker.example" not in html


def test_unused_story_pictures_are_swept_after_a_day(creator, client, monkeypatch, tmp_path):
    monkeypatch.setitem(current_app.config, "UPLOAD_FOLDER", str(tmp_path))  # no other test's files
    kept_url = _upload(client, make_campaign(creator, "draft").slug, _picture("PNG"), "a.png").json["url"]
    dropped_url = _upload(client, make_campaign(creator, "draft").slug, _picture("PNG"), "b.png").json["url"]
    campaign = db.session.scalar(select(Campaign).order_by(Campaign.id).limit(1))
    campaign.story = f"Look: ![lamp]({kept_url})"
    db.session.commit()
    assert campaigns.sweep_orphan_covers() == 0  # too young: its story may not be saved yet
    swept = campaigns.sweep_orphan_covers(clock.utcnow() + timedelta(days=2))
    assert swept == 1 and _story_files() >= {kept_url.rsplit("/", 1)[1]}
    assert dropped_url.rsplit("/", 1)[1] not in _story_files()


# --- video embeds ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url, player", [
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", YOUTUBE_PLAYER),
    ("https://youtube.com/watch?v=dQw4w9WgXcQ&t=42s", YOUTUBE_PLAYER),
    ("https://m.youtube.com/watch?v=dQw4w9WgXcQ", YOUTUBE_PLAYER),
    ("https://youtu.be/dQw4w9WgXcQ", YOUTUBE_PLAYER),
    ("https://youtu.be/dQw4w9WgXcQ?si=abc", YOUTUBE_PLAYER),
    ("https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ", YOUTUBE_PLAYER),
    ("<https://youtu.be/dQw4w9WgXcQ>", YOUTUBE_PLAYER),
    ("https://vimeo.com/76979871", VIMEO_PLAYER),
    ("https://www.vimeo.com/76979871/", VIMEO_PLAYER),
    ("https://player.vimeo.com/video/76979871", VIMEO_PLAYER),
    ("https://vimeo.com/76979871/0a1b2c3d4e", VIMEO_PLAYER + "?h=0a1b2c3d4e"),
])
def test_a_line_with_a_video_url_becomes_its_player(app, url, player):
    html = str(render_markdown(f"Before.\n\n  {url}  \n\nAfter."))
    frames = re.findall(r"<iframe[^>]*>", html)
    assert len(frames) == 1
    frame = frames[0]
    assert f'src="{player}"' in frame.replace("&amp;", "&")
    assert 'title="Video on ' in frame and 'loading="lazy"' in frame and "sandbox=" in frame
    assert "allow-forms" not in frame and "allow-top-navigation" not in frame
    assert "<p>Before.</p>" in html and "<p>After.</p>" in html


@pytest.mark.parametrize("text", [
    "https://youtube.com.evil.com/watch?v=dQw4w9WgXcQ",
    "https://www.youtube.com.evil.com/watch?v=dQw4w9WgXcQ",
    "https://evilyoutube.com/watch?v=dQw4w9WgXcQ",
    "https://youtube.com@evil.com/watch?v=dQw4w9WgXcQ",
    "https://youtube.com:8443/watch?v=dQw4w9WgXcQ",
    "https://evil.com/?u=https://youtu.be/dQw4w9WgXcQ",
    "https://vimeo.com.evil/76979871",
    "https://vimeo.com.evil.com/76979871",
    "https://player.vimeo.com.evil.com/video/76979871",
    "https://vimeo.com/channels/staffpicks",
    "https://vimeo.com/76979871?autoplay=1\"onload=alert(1)",
    "https://youtu.be/dQw4w9WgXc",  # ten characters
    "https://youtu.be/dQw4w9WgXcQ%22onload%3Dalert(1)",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ&v=aaaaaaaaaaa",
    "javascript:alert(1)//youtu.be/dQw4w9WgXcQ",
    "ftp://youtu.be/dQw4w9WgXcQ",
    "Watch https://youtu.be/dQw4w9WgXcQ",
    "[my video](https://youtu.be/dQw4w9WgXcQ)",
    "https://youtu.be/dQw4w9WgXcQ\nand more",
])
def test_anything_else_stays_text_or_a_link(app, text):
    html = str(render_markdown(text))
    assert "<iframe" not in html and 'href="javascript' not in html


def test_video_embed_reads_page_urls_only(app):
    assert video_embed("https://youtu.be/dQw4w9WgXcQ").src == YOUTUBE_PLAYER
    assert video_embed("https://vimeo.com/76979871").src == VIMEO_PLAYER
    for url in ("https://youtube.com.evil.com/watch?v=dQw4w9WgXcQ", "https://vimeo.com.evil/1", "javascript:alert(1)",
                "https://[::1/", "https://youtu.be/", "https://www.youtube.com/watch", "https://vimeo.com/0"):
        assert video_embed(url) is None


@pytest.mark.parametrize("text", [
    '<iframe src="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"></iframe>',
    '<iframe src="https://evil.example/"></iframe>',
    "<p>threshold-video-0</p>",
    "threshold-video-0123456789abcdef0123456789abcdef-0",
])
def test_an_iframe_written_by_hand_or_a_forged_marker_is_not_a_frame(app, text):
    assert "<iframe" not in str(render_markdown(text))


def test_embeds_show_on_the_campaign_page(creator, client):
    campaign = make_campaign(creator, "live", story="Our film:\n\nhttps://vimeo.com/76979871")
    page = client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
    assert f'<iframe src="{VIMEO_PLAYER}"' in page


def test_csp_frames_only_the_two_players(client):
    csp = client.get("/").headers["Content-Security-Policy"]
    frame_src = next(part.strip() for part in csp.split(";") if part.strip().startswith("frame-src"))
    sources = frame_src.split()[1:]
    stripe = current_app.config["STRIPE_API_BASE"]
    assert set(VIDEO_FRAME_ORIGINS) == {"https://www.youtube-nocookie.com", "https://player.vimeo.com"}
    assert set(sources) == {"'self'", stripe, *VIDEO_FRAME_ORIGINS}  # Stripe.js's card frames, and the players
    assert not any("youtube.com" in s and "nocookie" not in s for s in sources) and "*" not in frame_src
    assert "default-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp


# --- category ---------------------------------------------------------------------------------------

def test_the_category_starts_empty_and_is_required(creator, client):
    page = client.get("/campaigns/new").get_data(as_text=True)
    select_html = re.search(r'<select[^>]*name="category"[^>]*>(.*?)</select>', page, re.S)
    assert select_html and "required" in select_html.group(0)
    options = re.findall(r"<option[^>]*>", select_html.group(1))
    assert 'value=""' in options[0] and "Choose a category" in select_html.group(1)
    assert not any("selected" in option for option in options)
    form = {"title": "Solar Lantern", "blurb": "A lamp.", "category": "", "goal": "5000", "currency": "USD",
            "duration_days": "30", "story": "We make lamps.", "risks": "Late."}
    response = client.post("/campaigns/new", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Choose a category." in page and 'value="Solar Lantern"' in page and "We make lamps." in page
    assert db.session.scalar(select(Campaign.id)) is None
    assert client.post("/campaigns/new", data={**form, "category": "design"}).status_code == 302
