"""The base layout, error pages, the health check and security headers."""
from __future__ import annotations

import pytest

from tests.factories import login, make_user


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_home_page_and_navigation(client):
    page = client.get("/").get_data(as_text=True)
    assert "<title>Discover · Threshold</title>" in page
    assert "Log in" in page and "Sign up" in page
    assert "/bootstrap/static/css/bootstrap.min.css" in page  # served by us, no CDN
    assert "cdn." not in page
    assert client.get("/bootstrap/static/css/bootstrap.min.css").status_code == 200
    make_user("ann@example.com", name="Ann")
    login(client, "ann@example.com")
    page = client.get("/").get_data(as_text=True)
    assert "Ann" in page and "Log out" in page and "Sign up" not in page


def test_styled_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "Page not found" in page and "<nav" in page


def test_405_is_styled(client):
    response = client.get("/auth/logout")
    assert response.status_code == 405 and "Not allowed" in response.get_data(as_text=True)


def test_500_is_styled_and_logged(app, client, caplog):
    from app.errors import render_error

    with app.test_request_context("/"):
        body, code = render_error(500)
    assert code == 500 and "Something went wrong" in body


def test_flash_messages_show(client):
    make_user("ann@example.com")
    response = login(client, "ann@example.com")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You are logged in." in page


@pytest.mark.parametrize("path", ["/", "/auth/login", "/auth/register", "/no/such/page"])
def test_security_headers(app, client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert f"script-src 'self' {app.config['STRIPE_API_BASE']}" in csp  # the configured Stripe.js origin only
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in headers


def test_csp_defaults_to_stripe_js():
    from app.security import content_security_policy

    csp = content_security_policy("https://js.stripe.com/v3/")
    assert "script-src 'self' https://js.stripe.com;" in csp and "connect-src 'self' https://api.stripe.com https://js.stripe.com" in csp


def test_csp_admits_the_configured_stripe_origin(make_app):
    app = make_app(STRIPE_JS_URL="http://127.0.0.1:8420/js.stripe.com/v3/", STRIPE_API_BASE="http://127.0.0.1:8420")
    csp = app.test_client().get("/").headers["Content-Security-Policy"]
    assert "script-src 'self' http://127.0.0.1:8420" in csp
    assert "js.stripe.com " not in csp.replace("http://127.0.0.1:8420/js.stripe.com", "")


def test_production_adds_hsts_and_secure_cookies(make_app):
    app = make_app(PRODUCTION=True, SESSION_COOKIE_SECURE=True, SECRET_KEY="s" * 32, MAIL_SERVER="smtp.threshold.example",
                   BASE_URL="https://localhost")
    response = app.test_client().get("/")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_no_inline_style_so_the_csp_needs_no_unsafe_inline(app, client):
    """Issue 14: `style-src` is 'self' only, so no page may carry a style attribute or element
    (the browser journey fails on the console error a blocked one would raise)."""
    import re

    from app.community import services as community
    from tests.factories import make_campaign

    creator = make_user("cat@example.com", name="Cat")
    backer = make_user("bea@example.com", name="Bea")
    moderator = make_user("mod@example.com", moderator=True)
    story = "| Item | Cost |\n|:-----|-----:|\n| Kettle | 25 |\n\nLine one\nline two"
    campaign = make_campaign(creator, "live", story=story)
    draft = make_campaign(creator, "submitted")
    community.add_comment(campaign, creator, "First\nline breaks kept")
    pages = {None: ["/", "/campaigns", f"/campaigns/{campaign.slug}", "/no/such/page"],
             backer: [f"/campaigns/{campaign.slug}/pledge", "/me/pledges"],
             creator: ["/me/campaigns", f"/campaigns/{campaign.slug}/edit", f"/campaigns/{draft.slug}"],
             moderator: ["/moderation", f"/moderation/campaigns/{draft.slug}"]}
    for person, paths in pages.items():
        browser = app.test_client()
        if person:
            login(browser, person.email)
        for path in paths:
            response = browser.get(path, follow_redirects=True)
            page = response.get_data(as_text=True)
            assert response.status_code in (200, 404), (path, response.status_code)
            assert not re.search(r"<[^>]+\sstyle=|<style", page), path
            assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert 'class="text-end"' in client.get(f"/campaigns/{campaign.slug}").get_data(as_text=True)
