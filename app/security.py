"""Security headers on every response: CSP admitting our origin and the configured Stripe.js origin."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


#: The only frames a story may show: the video players render_markdown writes (YouTube's no-cookie
#: domain and Vimeo's player). Admitted on every page rather than only on the campaign page: the CSP
#: is one string built at start, and Markdown with a video is shown on the campaign page, its
#: preview and review, updates, FAQ answers and inside the editor's live preview; frame-src only
#: says what our pages may frame, and these two hosts serve nothing but players.
VIDEO_FRAME_ORIGINS = ("https://www.youtube-nocookie.com", "https://player.vimeo.com")


def content_security_policy(stripe_js_url: str, stripe_api_base: str = "") -> str:
    """The CSP: only our origin, plus Stripe.js (scripts, frames), Stripe's API (XHR), Stripe's
    onboarding (a form's redirect) and the two video players stories embed (frames)."""
    stripe = _origin(stripe_js_url)
    api = _origin(stripe_api_base) or ("https://api.stripe.com" if stripe else "")
    extra_script = f" {stripe}" if stripe else ""
    extra_connect = " ".join(dict.fromkeys(o for o in (api, stripe) if o))
    # "Set up payouts" posts to us and is redirected to Stripe's hosted onboarding (the offline
    # Stripe serves its own): a form's redirect must be allowed by form-action.
    onboarding = (_origin(stripe_api_base) or "https://connect.stripe.com") if stripe else ""
    extra_form = f" {onboarding}" if onboarding else ""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self'{extra_script}",
            # No inline style: templates use classes, and Stripe.js styles its own frames (and
            # localstripe's stand-in its elements) through the CSSOM, which the CSP does not cover.
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' {extra_connect}".rstrip(),
            " ".join(["frame-src 'self'" + extra_script, *VIDEO_FRAME_ORIGINS]),
            "object-src 'none'",
            "base-uri 'self'",
            f"form-action 'self'{extra_form}",
            "frame-ancestors 'none'",
        ]
    )


def init_app(app: Flask) -> None:
    """Attach the headers to every response."""
    csp = content_security_policy(app.config["STRIPE_JS_URL"], app.config["STRIPE_API_BASE"])
    production = app.config.get("PRODUCTION", False)

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(self)")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if production:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
