"""Markdown rendering: normal Markdown renders, and no XSS vector survives (OWASP filter-evasion style)."""
from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pytest
from jinja2 import Environment
from markupsafe import Markup

from app.content import markdown as md_module
from app.content.markdown import MAX_MARKDOWN_LENGTH, MarkdownTooLong, plain_excerpt, render_markdown

UPLOAD = "/uploads/covers/" + "0123456789abcdef" * 2 + ".jpg"

ALLOWED_TAGS = {
    "p", "br", "hr", "h2", "h3", "h4", "strong", "em", "s", "del", "blockquote",
    "ul", "ol", "li", "code", "pre", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRS = {
    "a": {"href", "title", "rel"},
    "img": {"src", "alt", "title", "loading"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
}
ALIGN = {"text-align:left", "text-align:center", "text-align:right"}
SAFE_SCHEMES = {"http", "https", "mailto"}
DANGEROUS_TEXT = (
    "<script", "<iframe", "<svg", "<style", "<object", "<embed", "<math", "<form", "<input", "<meta",
    "<base", "<link", "<body", "<details", "<textarea", "<frame", "<applet", "<video", "<audio",
    "<source", "<button", "<template", "<xmp", "<noscript", "<div", "<span", "<!--", "<![cdata",
)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_comment(self, data):
        self.comments.append(data)


def _scheme(url: str) -> str:
    """The scheme a browser would see: it drops tab/newline anywhere and C0 controls/space at the ends."""
    cleaned = re.sub(r"^[\x00-\x20]+|[\x00-\x20]+$", "", re.sub(r"[\t\n\r]", "", url)).lower()
    match = re.match(r"([a-z][a-z0-9+.\-]*):", cleaned)
    return match.group(1) if match else ""


def assert_safe(html: str) -> None:
    """No element, attribute or URL that could run script or load from elsewhere."""
    lowered = html.lower()
    for needle in DANGEROUS_TEXT:
        assert needle not in lowered, f"{needle!r} in {html!r}"
    parser = _Collector()
    parser.feed(html)
    parser.close()
    assert not parser.comments, html
    for tag, attrs in parser.elements:
        assert tag in ALLOWED_TAGS, f"<{tag}> in {html!r}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"{name} on <{tag}> in {html!r}"
            assert name in ALLOWED_ATTRS.get(tag, set()), f"{name} on <{tag}> in {html!r}"
            value = value or ""
            if name == "href":
                scheme = _scheme(value)
                assert scheme in SAFE_SCHEMES | {""}, f"scheme {scheme!r} in {html!r}"
                assert "script" not in re.sub(r"[\x00-\x20]", "", value.lower()).split(":")[0], html
            if name == "src":
                assert re.fullmatch(r"/uploads/covers/[0-9a-f]{32}(\.thumb)?\.(jpg|webp)", value), f"src {value!r} in {html!r}"
            if name == "style":
                assert value in ALIGN, html
            if name == "rel":
                assert value == "nofollow noopener ugc"
        if tag == "a":
            assert attrs.get("rel") == "nofollow noopener ugc", html
            assert "target" not in attrs


@pytest.mark.parametrize(
    "dangerous",
    [
        '<a href="java&#x09;script:alert(1)" rel="nofollow noopener ugc">x</a>',
        '<a href=" JAVASCRIPT:alert(1)" rel="nofollow noopener ugc">x</a>',
        '<a href="data:text/html,x" rel="nofollow noopener ugc">x</a>',
        '<a href="https://ok.example">no rel</a>',
        '<a href="https://ok.example" rel="nofollow noopener ugc" target="_blank">x</a>',
        '<img src="https://evil.example/p.gif">',
        "<p onclick=alert(1)>x</p>",
        "<span>x</span>",
        '<td style="color:red">x</td>',
    ],
)
def test_the_safety_check_itself_catches_vectors(dangerous):
    with pytest.raises(AssertionError):
        assert_safe(dangerous)


XSS_PAYLOADS = [
    # Raw HTML: the parser has HTML off, so all of it must come out as text.
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://xss.example/xss.js></SCRIPT>",
    "<SCRIPT/XSS SRC=\"http://xss.rocks/xss.js\"></SCRIPT>",
    "<<SCRIPT>alert(\"XSS\");//<</SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
    "<IMG \"\"\"><SCRIPT>alert(\"XSS\")</SCRIPT>\">",
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
    "<IMG SRC=&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text>x</text></a></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<style>body{background:url(javascript:alert(1))}</style>",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<a href=\"jav&#x09;ascript:alert(1)\">tab</a>",
    "<a href=\"jav&#x0A;ascript:alert(1)\">newline</a>",
    "<a href=\"javascript:alert(1)\" target=\"_blank\">x</a>",
    "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
    "<body onload=alert(1)>",
    "<object data=\"javascript:alert(1)\"></object>",
    "<embed src=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">",
    "<details open ontoggle=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<form action=javascript:alert(1)><button>go</button></form>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<base href=\"javascript:/\">",
    "<link rel=stylesheet href=\"https://evil.example/x.css\">",
    "<video><source onerror=alert(1)></video>",
    "<!--<img src=x onerror=alert(1)>-->",
    "<!-- comment --><p>after</p>",
    "<![CDATA[<script>alert(1)</script>]]>",
    "\"><script>alert(1)</script>",
    "'';!--\"<XSS>=&{()}",
    "<a href=\"javascript:alert(1)\">[inner](https://ok.example)</a>",
    "<textarea><script>alert(1)</script></textarea>",
    "<xmp><script>alert(1)</script></xmp>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    # Markdown links and images.
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x](java&#x09;script:alert(1))",
    "[x](java&#9;script:alert(1))",
    "[x](java&#10;script:alert(1))",
    "[x](java&#13;script:alert(1))",
    "[x](java&Tab;script:alert(1))",
    "[x](java&NewLine;script:alert(1))",
    "[x](&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1))",
    "[x](&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](javascript&#58;alert(1))",
    "[x](%6A%61vascript:alert(1))",
    "[x](java\x00script:alert(1))",
    "[x](\x01javascript:alert(1))",
    "[x](javascript\u2028:alert(1))",
    "[x](java\u200bscript:alert(1))",
    "[x](javascript://%0Aalert(1))",
    "[x](javascript:/*--></title></style></textarea></script></xmp><svg/onload='+/\"/+/onmouseover=1/+/[*/[]/+alert(1)//'>)",
    "[x](vbscript:msgbox(1))",
    "[x](VBScript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](DATA:text/html,<script>alert(1)</script>)",
    "[x](file:///etc/passwd)",
    "[x](ftp://files.example/x)",
    "[x](https://ok.example \"title\\\" onmouseover=\\\"alert(1)\")",
    "[x](https://ok.example\" onmouseover=\"alert(1))",
    "[x](https://ok.example 'a' onmouseover='alert(1)')",
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    "[x][ref]\n\n[ref]: <java&#x09;script:alert(1)>",
    "[<img src=x onerror=alert(1)>](https://ok.example)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](https://tracker.example/pixel.gif)",
    "![x](//tracker.example/pixel.gif)",
    "![x](/uploads/../auth/logout)",
    "![x](/uploads/covers/../../auth/logout)",
    "![x](/uploads/0123456789abcdef0123456789abcdef.jpg)",
    "![x](/uploads/covers/0123456789abcdef0123456789abcdef.jpg?x=1)",
    "![x\" onerror=\"alert(1)](" + UPLOAD + ")",
    "![x](" + UPLOAD + " \"t\\\" onerror=\\\"alert(1)\")",
    "[![x](javascript:alert(1))](javascript:alert(2))",
    # Autolinks.
    "<javascript:alert(1)>",
    "<JAVASCRIPT:alert(1)>",
    "<vbscript:msgbox(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    "<https://ok.example/\"onmouseover=\"alert(1)>",
    # Unicode tricks.
    "[x](\uff4a\uff41\uff56\uff41\uff53\uff43\uff52\uff49\uff50\uff54:alert(1))",
    "\u202e[x](javascript:alert(1))",
    "\ufeff<script>alert(1)</script>",
    "<scr\u0000ipt>alert(1)</scr\u0000ipt>",
    "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e",
    # Code must show its text, never run it.
    "```html\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    "    <iframe src=javascript:alert(1)>",
    "| a | b |\n|---|---|\n| <script>alert(1)</script> | [x](javascript:alert(1)) |",
    "> <svg onload=alert(1)>",
    "- <img src=x onerror=alert(1)>\n- [x](javascript:alert(1))",
    "# <script>alert(1)</script>",
]


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payload_is_neutralised(payload):
    html = render_markdown(payload)
    assert isinstance(html, Markup)
    assert_safe(str(html))
    # Sanitising our own output again changes nothing: no markup that mutates when re-parsed.
    assert md_module._CLEANER.clean(str(html)) == str(html)


@pytest.mark.parametrize(
    "payload",
    [p for p in XSS_PAYLOADS if p.lstrip("\ufeff").startswith("<") and not p.startswith(("<javascript", "<JAVA", "<vbscript", "<data", "<https"))],
)
def test_raw_html_is_shown_as_text(payload):
    assert "&lt;" in str(render_markdown(payload))


@pytest.mark.parametrize("payload", [p for p in XSS_PAYLOADS if "javascript" in p.lower() or "vbscript" in p.lower()])
def test_no_script_url_in_any_attribute(payload):
    parser = _Collector()
    parser.feed(str(render_markdown(payload)))
    for _tag, attrs in parser.elements:
        for value in attrs.values():
            squashed = re.sub(r"[\x00-\x20]", "", (value or "").lower())
            assert not squashed.startswith(("javascript:", "vbscript:", "data:")), payload


def test_sanitiser_alone_strips_html_that_reached_it():
    """Defence in depth: were raw HTML ever let through the parser, nh3 would still clean it."""
    dirty = (
        '<p onclick="x()">a<script>alert(1)</script><a href="jav&#x09;ascript:alert(1)" target="_blank">b</a>'
        '<a href="https://ok.example" rel="opener">c</a><img src="https://evil.example/p.gif" onerror="x()">'
        '<iframe src="https://evil.example"></iframe><svg><circle onload="x()"/></svg><h1>T</h1>'
        '<td style="color:red;background:url(javascript:x)">d</td><!-- note --></p>'
    )
    clean = md_module._CLEANER.clean(dirty)
    assert "script" not in clean.lower()
    assert "onclick" not in clean and "onerror" not in clean and "target" not in clean
    assert "evil.example" not in clean and "<h1>" not in clean and "<!--" not in clean
    assert '<a href="https://ok.example" rel="nofollow noopener ugc">c</a>' in clean


# --- normal Markdown ------------------------------------------------------------------------------


def test_headings_are_clamped_below_the_page_title():
    html = str(render_markdown("# One\n\n## Two\n\n### Three\n\n#### Four\n\n##### Five\n\n###### Six"))
    assert "<h2>One</h2>" in html and "<h2>Two</h2>" in html and "<h3>Three</h3>" in html
    assert "<h4>Four</h4>" in html and "<h4>Five</h4>" in html and "<h4>Six</h4>" in html
    assert "<h1" not in html and "<h5" not in html and "<h6" not in html


def test_setext_heading_is_clamped_too():
    assert str(render_markdown("Title\n=====")) == "<h2>Title</h2>\n"


def test_lists():
    html = str(render_markdown("- a\n- b\n\n3. three\n4. four"))
    assert "<ul>\n<li>a</li>\n<li>b</li>\n</ul>" in html
    assert '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>' in html


def test_link_gets_rel_and_keeps_title_never_target():
    html = str(render_markdown('[site](https://example.org/a?b=1&c=2 "Our site")'))
    assert html == (
        '<p><a href="https://example.org/a?b=1&amp;c=2" title="Our site" rel="nofollow noopener ugc">site</a></p>\n'
    )


@pytest.mark.parametrize(
    "source, href",
    [
        ("<https://example.org/x>", "https://example.org/x"),
        ("[m](mailto:team@example.org)", "mailto:team@example.org"),
        ("<team@example.org>", "mailto:team@example.org"),
        ("[http](http://example.org)", "http://example.org"),
        ("[rel](/campaigns/solar-kettle)", "/campaigns/solar-kettle"),
        ("[frag](#faq)", "#faq"),
    ],
)
def test_allowed_links(source, href):
    html = str(render_markdown(source))
    assert f'href="{href}"' in html
    assert 'rel="nofollow noopener ugc"' in html


def test_code_block_and_inline_code_escape_angle_brackets():
    html = str(render_markdown("Use `<b>` tags:\n\n```python\nif a < b and c > d:\n    print('<script>')\n```"))
    assert "<code>&lt;b&gt;</code>" in html
    assert "<pre><code>if a &lt; b and c &gt; d:\n    print('&lt;script&gt;')\n</code></pre>" in html
    assert 'class="language-python"' not in html  # class attributes are not on the allow-list


def test_emphasis_strikethrough_quote_rule_and_breaks():
    html = str(render_markdown("*em* **strong** ~~gone~~\n\n> quoted\n\n---\n\nline one  \nline two"))
    assert "<em>em</em>" in html and "<strong>strong</strong>" in html and "<s>gone</s>" in html
    assert "<blockquote>\n<p>quoted</p>\n</blockquote>" in html
    assert "<hr>" in html
    assert "line one<br>" in html


def test_table_with_alignment():
    html = str(render_markdown("| Item | Cost |\n|:-----|-----:|\n| Kettle | 25 |"))
    assert "<table>" in html and "<thead>" in html and "<tbody>" in html
    assert '<th class="text-start">Item</th>' in html
    assert '<td class="text-end">25</td>' in html
    assert "style=" not in html  # the CSP admits no inline style


def test_raw_html_is_escaped_not_rendered():
    assert str(render_markdown("<b>hi</b> & <i>you</i>")) == "<p>&lt;b&gt;hi&lt;/b&gt; &amp; &lt;i&gt;you&lt;/i&gt;</p>\n"


def test_own_upload_image_renders_others_become_alt_text():
    html = str(render_markdown(f"![Our prototype]({UPLOAD} \"Prototype\")"))
    assert html == f'<p><img src="{UPLOAD}" alt="Our prototype" title="Prototype" loading="lazy"></p>\n'
    assert str(render_markdown("![A pixel](https://tracker.example/p.gif)")) == "<p>A pixel</p>\n"


def test_empty_and_none_render_nothing():
    assert render_markdown("") == Markup("")
    assert render_markdown(None) == Markup("")


def test_markup_is_not_escaped_again_by_jinja():
    template = Environment(autoescape=True).from_string("{{ story }}")
    assert template.render(story=render_markdown("**hi**")) == "<p><strong>hi</strong></p>\n"


def test_length_limit_raises_instead_of_truncating():
    assert "x" * 10 in str(render_markdown("x" * MAX_MARKDOWN_LENGTH))
    with pytest.raises(MarkdownTooLong):
        render_markdown("x" * (MAX_MARKDOWN_LENGTH + 1))
    with pytest.raises(MarkdownTooLong):
        plain_excerpt("x" * (MAX_MARKDOWN_LENGTH + 1))


def test_pathological_nesting_is_bounded_and_fast():
    started = time.perf_counter()
    for text in ("> " * 10_000 + "deep", "[" * 20_000 + "x" + "]" * 20_000, "*" * 20_000 + "a" + "*" * 20_000, "- " * 10_000):
        assert_safe(str(render_markdown(text)))
    assert time.perf_counter() - started < 10


# --- plain excerpt --------------------------------------------------------------------------------


def test_excerpt_strips_markdown():
    text = "# Solar kettle\n\nBoil water with **sunlight** and [our lens](https://example.org).\n\n- fast\n- free"
    assert plain_excerpt(text, 200) == "Solar kettle Boil water with sunlight and our lens. fast free"


def test_excerpt_decodes_entities_and_leaves_html_as_text():
    # Plain text: the template escapes it, so "<b>" shows as typed and "&amp;" as "&".
    assert plain_excerpt("Fish &amp; chips <b>now</b>") == "Fish & chips <b>now</b>"


def test_excerpt_skips_code_blocks_keeps_inline_code_and_alt_text():
    text = "Run `make`.\n\n```\nrm -rf /\n```\n\n![The lens](https://x.example/l.png) works."
    assert plain_excerpt(text) == "Run make. The lens works."


@pytest.mark.parametrize("length", [1, 5, 20, 37, 80, 160])
def test_excerpt_cuts_at_a_word_within_length(length):
    text = "Boil water anywhere with nothing but sunlight and a folding lens made of recycled plastic. " * 3
    excerpt = plain_excerpt(text, length)
    assert len(excerpt) <= length
    assert excerpt.endswith("…")
    if length >= 20:
        assert text.startswith(excerpt[:-1])
        assert text[len(excerpt) - 1] in " ," or excerpt[-2] in "."


def test_excerpt_short_text_is_whole_and_empty_is_empty():
    assert plain_excerpt("Just this.", 160) == "Just this."
    assert plain_excerpt("", 10) == "" and plain_excerpt(None, 10) == ""
    with pytest.raises(ValueError):
        plain_excerpt("text", 0)


def test_excerpt_of_long_story_is_fast():
    story = ("A paragraph with **bold** and [a link](https://example.org). " * 15 + "\n\n") * 50
    story = story[:MAX_MARKDOWN_LENGTH]
    started = time.perf_counter()
    for _ in range(20):
        excerpt = plain_excerpt(story, 160)
    assert time.perf_counter() - started < 1.0
    assert excerpt.startswith("A paragraph with bold and a link.")
