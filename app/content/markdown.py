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
- Images: only our own uploads, ``/uploads/covers/<32 hex>[.thumb].jpg|webp`` (the route that
  serves the names ``images.save_cover`` makes). Anything else renders as its alt text. External images would let any creator track
  visitors (IP, time, referrer) with a pixel, hot-link huge or swapped-out pictures after review,
  and are blocked by the CSP (``img-src 'self'``) anyway.
- linkify (bare ``www.x.com`` becoming a link) is off: it needs an extra package, and explicit
  ``[text](url)`` and ``<https://…>`` autolinks cover the need.
- Input longer than ``MAX_MARKDOWN_LENGTH`` characters raises ``MarkdownTooLong`` instead of being
  cut short: forms validate the length first (``Length(max=MAX_MARKDOWN_LENGTH)``), so a longer text
  here is a programming error, and silently dropping the end of a creator's story would be worse.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape

__all__ = [
    "MAX_MARKDOWN_LENGTH",
    "MarkdownTooLong",
    "plain_excerpt",
    "render_markdown",
]

#: The longest Markdown text we render; forms must reject longer input with a message.
MAX_MARKDOWN_LENGTH = 50_000

#: Same-origin images: the names images.save_cover makes, under the route that serves them (campaigns.cover).
_LOCAL_IMAGE = re.compile(r"/uploads/covers/[0-9a-f]{32}(?:\.thumb)?\.(?:jpg|webp)")
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
    md.add_render_rule("image", _render_image)
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
    return Markup(_CLEANER.clean(_MD.render(text)))


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
