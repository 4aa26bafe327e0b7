"""Markdown written by creators (story, risks) rendered to sanitised HTML, and plain-text excerpts of it.

Two layers, so that a bug in one is not a hole:

1. markdown-it-py parses CommonMark (plus GFM tables and strikethrough) with raw HTML *disabled*: any
   ``<tag>`` a creator types comes out as visible text, and its link validator refuses
   ``javascript:``, ``vbscript:``, ``file:`` and ``data:`` destinations.
2. nh3 (ammonia) then cleans the HTML against an explicit allow-list: only the tags Markdown makes,
   only ``href``/``title`` on links, only http/https/mailto (or same-site relative) URLs, every link
   gets ``rel="nofollow noopener ugc"``; comments, ``target``, ``style``, ``class`` (but three exact
   table-alignment classes), ``on*`` attributes and ``<script>``-like elements with their content are dropped.

Decisions:

- Headings are clamped to ``h2``–``h4``: the campaign page owns the one ``h1`` (its title), so ``#``
  becomes ``h2`` and ``#####``/``######`` become ``h4``. Clamping keeps ``#`` and ``##`` both at
  the top level a creator meant, and never produces a heading bigger than the page's sections.
- Images: only our own uploads, ``/uploads/covers/<32 hex>[.thumb].jpg|webp`` and
  ``/uploads/story/<32 hex>.jpg`` (the routes that serve the names ``images.save_cover`` makes: covers,
  and the pictures creators upload into their story). Anything else renders as its alt text. External images would let any creator track
  visitors (IP, time, referrer) with a pixel, hot-link huge or swapped-out pictures after review,
  and are blocked by the CSP (``img-src 'self'``) anyway.
- Videos: a paragraph that is only a YouTube (``youtube.com/watch?v=``, ``youtu.be/``,
  ``youtube-nocookie.com/embed/``) or Vimeo (``vimeo.com/<id>``) URL becomes that video's player, an
  ``<iframe>`` to ``https://www.youtube-nocookie.com/embed/<id>`` or ``https://player.vimeo.com/video/<id>``
  (the CSP's frame-src admits those two hosts only). The host is compared exactly and the id checked
  by a strict pattern; the frame is written by us *after* nh3 has cleaned the text, in place of a
  marker carrying a random per-render nonce, so nh3 keeps dropping every iframe it sees and a
  creator can neither forge the marker nor choose a frame's attributes. Done here so that the page
  and the editor's preview show the same thing.
- linkify (bare ``www.x.com`` becoming a link) is off: it needs an extra package, and explicit
  ``[text](url)`` and ``<https://…>`` autolinks cover the need.
- Input longer than ``MAX_MARKDOWN_LENGTH`` characters raises ``MarkdownTooLong`` instead of being
  cut short: forms validate the length first (``Length(max=MAX_MARKDOWN_LENGTH)``), so a longer text
  here is a programming error, and silently dropping the end of a creator's story would be worse.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import nh3
from flask_babel import gettext as _
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape

__all__ = [
    "MAX_MARKDOWN_LENGTH",
    "MarkdownTooLong",
    "plain_excerpt",
    "render_markdown",
    "video_embed",
]

#: The longest Markdown text we render; forms must reject longer input with a message.
MAX_MARKDOWN_LENGTH = 50_000

#: Same-origin images: the names images.save_cover makes, under the routes that serve them
#: (campaigns.cover, campaigns.story_image; story images are always re-encoded JPEGs).
_LOCAL_IMAGE = re.compile(r"/uploads/(?:covers/[0-9a-f]{32}(?:\.thumb)?\.(?:jpg|webp)|story/[0-9a-f]{32}\.jpg)")
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
# Browsers drop ASCII tab/newline anywhere in a URL and C0 controls/space at its ends before they
# look for a scheme; do the same so "java\tscript:" is judged as "javascript:".
_URL_IGNORED = re.compile(r"[\x00-\x20\x7f-\x9f]")
_WHITESPACE = re.compile(r"\s+")

_ALLOWED_TAGS = {
    "p", "br", "hr", "h2", "h3", "h4", "strong", "em", "s", "del", "blockquote",
    "ul", "ol", "li", "code", "pre", "a", "img",
    "table", "thead", "tbody", "tr", "th", "td",
}
# Table alignment as Bootstrap classes, not style attributes: the CSP admits no inline style.
_ALIGN_CLASS = {"text-align:left": "text-start", "text-align:center": "text-center", "text-align:right": "text-end"}
# Elements removed together with everything inside them (raw HTML is off in the parser, so these
# can only appear if a future change lets HTML through; then their content is not text either).
_DROP_WITH_CONTENT = {
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math",
    "template", "noscript", "noembed", "noframes", "xmp", "textarea", "title", "select", "form",
}


# --- video embeds --------------------------------------------------------------------------------

_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_VIMEO_PATH = re.compile(r"/(?:video/)?([1-9][0-9]{0,11})(?:/([0-9a-f]{6,32}))?/?")
_YOUTUBE_WATCH_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com"})
_YOUTUBE_NOCOOKIE_HOSTS = frozenset({"youtube-nocookie.com", "www.youtube-nocookie.com"})
_VIMEO_HOSTS = frozenset({"vimeo.com", "www.vimeo.com", "player.vimeo.com"})
#: A whole paragraph that may be a video link: one http(s) URL (optionally as an <autolink>), nothing else.
_LONE_URL = re.compile(r"<?(https?://[^\s<>\"'\\`]+)>?")


@dataclass(frozen=True)
class Video:
    """A video a story embeds: the player's URL (on one of the two hosts the CSP frames) and its site."""

    src: str
    site: str


def video_embed(url: str) -> Video | None:
    """The player for a YouTube or Vimeo page URL, or None for anything else (other hosts, lookalikes,
    malformed ids). Hosts are compared whole, so ``youtube.com.evil.com`` is not YouTube."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or port is not None or parts.netloc.lower() != host:
        return None  # no user info ("youtube.com@evil.com"), no port
    path = parts.path
    video_id = ""
    if host in _YOUTUBE_WATCH_HOSTS and path in ("/watch", "/watch/"):
        ids = parse_qs(parts.query).get("v", [])
        video_id = ids[0] if len(ids) == 1 else ""
    elif host == "youtu.be":
        video_id = path[1:].rstrip("/")
    elif host in _YOUTUBE_WATCH_HOSTS | _YOUTUBE_NOCOOKIE_HOSTS and path.startswith("/embed/"):
        video_id = path[len("/embed/"):].rstrip("/")
    elif host in _VIMEO_HOSTS:
        match = _VIMEO_PATH.fullmatch(path)
        if not match or (host == "player.vimeo.com") != path.startswith("/video/"):
            return None
        number, unlisted = match.groups()
        # An unlisted video's page URL carries its key as a second segment; the player takes it as ?h=.
        return Video(f"https://player.vimeo.com/video/{number}" + (f"?h={unlisted}" if unlisted else ""), "Vimeo")
    if video_id and _YOUTUBE_ID.fullmatch(video_id):
        return Video(f"https://www.youtube-nocookie.com/embed/{video_id}", "YouTube")
    return None


def _mark_videos(state) -> None:
    """Core rule: a paragraph that is only a video URL becomes a video token (when rendering for a page)."""
    if "videos" not in state.env:
        return  # parsing for an excerpt: the URL stays text
    tokens = state.tokens
    for index in range(len(tokens) - 2):
        opening, inline, closing = tokens[index], tokens[index + 1], tokens[index + 2]
        if opening.type != "paragraph_open" or inline.type != "inline" or closing.type != "paragraph_close":
            continue
        match = _LONE_URL.fullmatch(inline.content.strip())
        if not match or match.group(0).startswith("<") != match.group(0).endswith(">"):
            continue
        video = video_embed(match.group(1))
        if video is None:
            continue
        opening.type, opening.tag, opening.nesting = "threshold_video", "", 0
        opening.meta = {"index": len(state.env["videos"])}
        state.env["videos"].append(video)
        inline.type, inline.children, inline.content = "text", [], ""
        closing.type, closing.tag, closing.nesting = "text", "", 0


def _render_video(self, tokens: list[Token], idx: int, options, env) -> str:
    """A marker nh3 lets through as plain text; render_markdown swaps it for the player afterwards."""
    return f"<p>{env['nonce']}-{tokens[idx].meta['index']}</p>\n"


def _player(video: Video) -> str:
    """The iframe for a checked video, every attribute ours.

    sandbox: the players need their scripts and their own origin's storage, may go full screen, and
    open "watch on YouTube/Vimeo" in a new tab (unsandboxed there); nothing else (no forms, no
    navigating our page). allow: full screen and picture-in-picture only.
    """
    title = _("Video on %(site)s", site=video.site)
    return (
        f'<div class="ratio ratio-16x9 my-3 story-video"><iframe src="{escape(video.src)}" title="{escape(title)}" '
        'loading="lazy" referrerpolicy="strict-origin-when-cross-origin" allow="fullscreen; picture-in-picture" '
        'allowfullscreen sandbox="allow-scripts allow-same-origin allow-presentation allow-popups '
        'allow-popups-to-escape-sandbox"></iframe></div>'
    )


class MarkdownTooLong(ValueError):
    """The text is longer than MAX_MARKDOWN_LENGTH; the form should have refused it."""


def _clamp_headings(state) -> None:
    """Core rule: h1 → h2 and h5/h6 → h4 (the page's own h1 is the campaign title)."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            level = min(max(int(token.tag[1]), 2), 4)
            token.tag = f"h{level}"


def _align_as_class(state) -> None:
    """Core rule: a table cell's ``style="text-align:…"`` becomes the matching class."""
    for token in state.tokens:
        if token.type in ("th_open", "td_open") and token.attrs.get("style") in _ALIGN_CLASS:
            token.attrSet("class", _ALIGN_CLASS[str(token.attrs.pop("style"))])


def _render_image(self, tokens: list[Token], idx: int, options, env) -> str:
    """Our own uploads render as <img>; any other image becomes its alt text."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env)
    if _LOCAL_IMAGE.fullmatch(src):
        title = token.attrGet("title")
        title_attr = f' title="{escape(title)}"' if title else ""
        return f'<img src="{escape(src)}" alt="{escape(alt)}"{title_attr}>'
    return str(escape(alt))


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.core.ruler.push("threshold_clamp_headings", _clamp_headings)
    md.core.ruler.push("threshold_align_as_class", _align_as_class)
    md.core.ruler.push("threshold_videos", _mark_videos)
    md.add_render_rule("image", _render_image)
    md.add_render_rule("threshold_video", _render_video)
    return md


def _safe_url(value: str) -> bool:
    """True for http(s)/mailto URLs and same-site relative ones, judged the way a browser reads them."""
    url = _URL_IGNORED.sub("", value)
    if not url:
        return False
    head = re.split(r"[/?#]", url, maxsplit=1)[0]
    if ":" not in head:
        return True  # relative: a path, query or fragment on our own site (or //host, which is http(s))
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return False
    return scheme in _LINK_SCHEMES


def _filter_attribute(tag: str, name: str, value: str) -> str | None:
    """Second check on the URLs nh3 kept (it already dropped other schemes); never any on* handler."""
    if name.lower().startswith("on"):
        return None
    if tag == "a" and name == "href":
        return value if _safe_url(value) else None
    if tag == "img" and name == "src":
        return value if _LOCAL_IMAGE.fullmatch(value) else None
    return value


_MD = _parser()
_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}},
    tag_attribute_values={"th": {"class": set(_ALIGN_CLASS.values())}, "td": {"class": set(_ALIGN_CLASS.values())}},
    set_tag_attribute_values={"img": {"loading": "lazy"}},
    attribute_filter=_filter_attribute,
    strip_comments=True,
    link_rel="nofollow noopener ugc",
    url_schemes=set(_LINK_SCHEMES),
)


def _check_length(text: str) -> None:
    if len(text) > MAX_MARKDOWN_LENGTH:
        raise MarkdownTooLong(f"Markdown text has {len(text)} characters; the limit is {MAX_MARKDOWN_LENGTH}")


def render_markdown(text: str | None) -> Markup:
    """Render creator-written Markdown to sanitised HTML, safe to put in a template as is."""
    if not text:
        return Markup("")
    _check_length(text)
    env: dict = {"videos": [], "nonce": f"threshold-video-{secrets.token_hex(16)}"}
    html = _CLEANER.clean(_MD.render(text, env))
    for index, video in enumerate(env["videos"]):
        html = html.replace(f"<p>{env['nonce']}-{index}</p>", _player(video), 1)
    return Markup(html)


def _inline_text(children: list[Token]) -> list[str]:
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.extend(_inline_text(child.children or []))
    return parts


def _leading_blocks(text: str, budget: int) -> str:
    """The first blocks of `text` within about `budget` characters, cut at a blank line.

    An excerpt needs only the start, and parsing a whole 50,000-character story for a card costs
    ~100 ms. (A reference-style link whose definition lies beyond the cut shows as its bracketed text.)
    """
    if len(text) <= budget:
        return text
    head = text[:budget]
    blank = head.rfind("\n\n")
    return head[:blank] if blank > 0 else head


def plain_excerpt(text: str | None, length: int = 160) -> str:
    """The text of some Markdown without its markup, cut at a word to at most `length` characters.

    For cards and meta descriptions. Code blocks are left out; links keep their text. The result is
    plain text: let the template escape it. A cut text ends with "…" (counted in `length`).
    """
    if length < 1:
        raise ValueError("length must be positive")
    if not text:
        return ""
    _check_length(text)
    blocks: list[str] = []
    for token in _MD.parse(_leading_blocks(text, max(20 * length, 4000))):
        if token.type == "inline":
            blocks.append("".join(_inline_text(token.children or [])))
    plain = _WHITESPACE.sub(" ", " ".join(blocks)).strip()
    if len(plain) <= length:
        return plain
    cut = plain[: length - 1]
    space = cut.rfind(" ")
    if space >= length // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"
