"""Sharing a campaign: its canonical address and cover from BASE_URL (for Open Graph and Twitter cards),
and share links to the usual networks as plain links — no third-party script ever runs on our pages."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from flask_babel import gettext as _

from app.campaigns.models import Campaign
from app.links import external_url


@dataclass(frozen=True, slots=True)
class ShareLink:
    key: str
    label: str
    url: str


def _q(text: str) -> str:
    """Percent-encode everything but unreserved characters (also "/", ":", "?", "&", "#")."""
    return quote(text, safe="")


def campaign_url(campaign: Campaign) -> str:
    """The campaign page's canonical, absolute address."""
    return external_url("campaigns.show", slug=campaign.slug)


def cover_url(campaign: Campaign) -> str | None:
    return external_url("campaigns.cover", name=campaign.cover) if campaign.cover else None


def email_link(campaign: Campaign) -> str:
    """A mailto: link with the title as subject and the blurb and address as body (RFC 6068 encoding)."""
    url = campaign_url(campaign)
    body = f"{campaign.blurb}\n\n{url}" if campaign.blurb else url
    return f"mailto:?subject={_q(campaign.title)}&body={_q(body)}"


def network_links(campaign: Campaign) -> list[ShareLink]:
    """Plain links to each network's own share page, with the campaign's address encoded."""
    url, title = _q(campaign_url(campaign)), _q(campaign.title)
    targets = (
        ("x", "X (Twitter)", f"https://twitter.com/intent/tweet?url={url}&text={title}"),
        ("facebook", "Facebook", f"https://www.facebook.com/sharer/sharer.php?u={url}"),
        ("linkedin", "LinkedIn", f"https://www.linkedin.com/sharing/share-offsite/?url={url}"),
        ("reddit", "Reddit", f"https://www.reddit.com/submit?url={url}&title={title}"),
        ("whatsapp", "WhatsApp", f"https://wa.me/?text={_q(campaign.title + ' ' + campaign_url(campaign))}"),
    )
    return [ShareLink(key, _("Share on %(network)s", network=name), link) for key, name, link in targets]
