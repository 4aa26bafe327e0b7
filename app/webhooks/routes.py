"""POST /stripe/webhook: Stripe's events, signature checked on the raw body, each processed once.

Stripe is a machine: it gets short JSON, no CSRF token is asked of it (the signature is its proof),
and it is never rate limited (it retries what we refuse, and bursts after an outage).
"""
from __future__ import annotations

import logging

from flask import request

from app.extensions import csrf, limiter
from app.payments import gateway
from app.webhooks import bp, services

log = logging.getLogger("threshold.webhooks")

#: Stripe's events are a few kilobytes; refuse (413) anything far larger before reading it.
MAX_BODY_BYTES = 1024 * 1024


@bp.post("/stripe/webhook")
@csrf.exempt
@limiter.exempt
def stripe_webhook():
    """Verify the event's signature, store it once, hand it on; 400 for anything not a test-mode event."""
    request.max_content_length = MAX_BODY_BYTES
    payload = request.get_data(cache=False)
    try:
        event = gateway.verify_webhook(payload, request.headers.get("Stripe-Signature"))
    except gateway.WebhookSignatureError as error:
        log.warning("webhook refused from %s: %s", request.remote_addr, error.code)
        return {"error": "invalid signature"}, 400
    except gateway.GatewayError as error:
        log.warning("webhook refused from %s: %s", request.remote_addr, error.code)
        message = "live-mode event refused" if error.code == "livemode" else "not a Stripe event"
        return {"error": message}, 400
    receipt = services.receive(event)
    return {"received": True, "id": receipt.event_id, "duplicate": receipt.duplicate}
