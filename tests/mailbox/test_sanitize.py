"""HTML mail sanitizer and plain-text rendering (mailbox/sanitize.py)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from django.utils.safestring import SafeString

from mailbox.sanitize import MAX_HTML_CHARS, sanitize_html, text_to_html
from tests.data.xss.vectors import VECTORS, XssVector

# What the sanitizer may emit, per the product spec (kept here, not imported,
# so a change to the allow-list has to be made twice on purpose).
ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo",
        "big", "blockquote", "br", "caption", "center", "cite", "code", "col",
        "colgroup", "dd", "del", "dfn", "div", "dl", "dt", "em", "figcaption",
        "figure", "font", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "i", "img", "ins", "kbd", "li", "main", "mark", "nav", "ol", "p",
        "pre", "q", "s", "samp", "section", "small", "span", "strike", "strong",
        "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr",
        "tt", "u", "ul", "var", "wbr",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = frozenset(
    {
        "style", "title", "dir", "lang", "href", "target", "rel", "src", "srcset",
        "alt", "width", "height", "border", "align", "valign", "hspace", "vspace",
        "cellpadding", "cellspacing", "bgcolor", "background", "summary", "frame",
        "rules", "colspan", "rowspan", "nowrap", "scope", "abbr", "span", "color",
        "face", "size", "noshade", "start", "type", "reversed", "value",
        "datetime", "data-blocked",
    }
)  # fmt: skip
URL_ATTRIBUTES = ("src", "srcset", "background")
CSS_FORBIDDEN = (
    "url(",
    "expression",
    "behavior",
    "-moz-binding",
    "position",
    "@import",
    "javascript:",
    "image-set",
    "var(",
    "attr(",
    "z-index",
)
RAW_FORBIDDEN = (
    "<script",
    "<style",
    "<svg",
    "<math",
    "<iframe",
    "<object",
    "<embed",
    "<form",
    "<input",
    "<button",
    "<base",
    "<meta",
    "<link",
    "<noscript",
    "<template",
    "<textarea",
    "<xmp",
    "<!--",
)

PROXY = "https://webmail.test/proxy?u="
CID_PREFIX = "/attachments/cid/"


def proxy(url: str) -> str:
    return PROXY + url


def known_cid(cid: str) -> str | None:
    return f"{CID_PREFIX}{cid}" if cid in ("logo", "logo@example.com") else None


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]


@dataclass
class Parsed:
    elements: list[Element] = field(default_factory=list)
    text: str = ""
    oddities: list[str] = field(default_factory=list)

    def find(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.result = Parsed()
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [name for name, _ in attrs]
        if len(names) != len(set(names)):
            self.result.oddities.append(f"duplicate attribute on {tag}")
        self.result.elements.append(
            Element(tag, {name: value or "" for name, value in attrs})
        )

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_comment(self, data: str) -> None:
        self.result.oddities.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.result.oddities.append(f"declaration {decl!r}")

    def handle_pi(self, data: str) -> None:
        self.result.oddities.append(f"processing instruction {data!r}")

    def unknown_decl(self, data: str) -> None:
        self.result.oddities.append(f"unknown declaration {data!r}")

    def close(self) -> None:
        super().close()
        self.result.text = "".join(self._text)


def parse(html: str) -> Parsed:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.result


def css_plain(style: str) -> str:
    """Return a style value with comments and CSS escapes resolved, lower-cased."""
    style = re.sub(r"/\*.*?\*/", "", style, flags=re.DOTALL)
    style = re.sub(
        r"\\([0-9a-fA-F]{1,6})\s?", lambda m: chr(int(m.group(1), 16)), style
    )
    style = re.sub(r"\\(.)", r"\1", style)
    return re.sub(r"\s+", "", style).lower()


def srcset_urls(value: str) -> list[str]:
    return [c.strip().split()[0] for c in value.split(", ") if c.strip()]


def assert_safe(html: str, *, loadable_prefixes: tuple[str, ...] = ()) -> Parsed:
    """Assert the sanitizer's output is inert; return its parse.

    Only URLs starting with one of loadable_prefixes may appear where a browser
    would load them (src, srcset, background, CSS url()).
    """
    lowered = html.lower()
    for needle in RAW_FORBIDDEN:
        assert needle not in lowered, needle
    parsed = parse(html)
    assert parsed.oddities == []
    for element in parsed.elements:
        assert element.tag in ALLOWED_TAGS, element.tag
        for name, value in element.attrs.items():
            assert not name.startswith("on"), (element.tag, name)
            assert name in ALLOWED_ATTRIBUTES, (element.tag, name)
            if name == "href":
                assert element.tag == "a"
                assert re.match(r"(https?://[^/\s]|mailto:)", value), value
            if name in URL_ATTRIBUTES:
                assert loadable_prefixes, (element.tag, name, value)
                urls = srcset_urls(value) if name == "srcset" else [value]
                for url in urls:
                    assert url.startswith(loadable_prefixes), url
            if name == "data-blocked":
                assert value == "remote"
        style = css_plain(element.attrs.get("style", ""))
        for needle in CSS_FORBIDDEN:
            if needle == "url(" and loadable_prefixes:
                for url in re.findall(
                    r'url\("([^"]*)"\)', element.attrs.get("style", "")
                ):
                    assert url.startswith(loadable_prefixes), url
                continue
            assert needle not in style, (needle, element.attrs["style"])
        if element.tag == "a" and "href" in element.attrs:
            assert element.attrs["target"] == "_blank"
            assert set(element.attrs["rel"].split()) >= {"noopener", "noreferrer"}
    return parsed


def vector_id(vector: XssVector) -> str:
    return vector.id


# -- the hostile corpus ----------------------------------------------------------


def test_corpus_is_large_and_unique():
    """The corpus holds at least 60 vectors with unique ids and descriptions."""
    assert len(VECTORS) >= 60
    assert len({v.id for v in VECTORS}) == len(VECTORS)
    assert all(v.description for v in VECTORS)


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_vector_is_neutralised(vector):
    """Nothing in the output runs script, loads a remote URL or leaves the mail."""
    result = sanitize_html(vector.html)
    assert isinstance(result.html, SafeString)
    assert_safe(result.html)
    if vector.hosts is not None:
        assert result.remote_hosts == vector.hosts
        assert result.remote_blocked is bool(vector.hosts)


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_vector_stays_inert_with_remote_content_allowed(vector):
    """With remote content allowed, only proxy and attachment URLs load."""
    result = sanitize_html(
        vector.html, allow_remote=True, proxy_url=proxy, cid_url=known_cid
    )
    assert_safe(result.html, loadable_prefixes=(PROXY, CID_PREFIX))
    assert result.remote_blocked is False
    assert result.remote_hosts == ()


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_vector_output_is_a_fixed_point(vector):
    """Sanitizing the output again changes nothing (no parse mutation)."""
    once = sanitize_html(vector.html).html
    assert sanitize_html(once).html == once


SOUP = (
    "<table>", "<tr>", "<td>", "</td>", "</table>", "<p>", "</p>", "<b>", "</b>",
    "<i>", '<a href="https://x.example/">', "</a>", "<ul>", "<li>", "<select>",
    "<option>", '<font color="red">', "</font>", "text", "&amp;", "&lt;", "<br>",
    "<h1>", "</h1>", "<h2>", "<pre>", "\n", "<pre>\n\n", "<caption>", "<col>",
    "<form>", "<center>", "<div>", "</div>", '<img src="https://i.example/x.png">',
    "<frameset>", "<body>", "<html>", "<head>", "<nobr>", "<listing>", "<math>",
    "<svg>", "<desc>", "<foreignObject>", "<mtext>", "<dd>", "<dt>", "<button>",
    "<object>", "<marquee>", "<blockquote>", "<th>", "<thead>", "</tr>", "<u>",
    "<strong>", "<code>", "<address>", "<dl>", "<ol>", "<figure>",
)  # fmt: skip


def test_random_tag_soup_output_is_a_fixed_point():
    """Random mixes of the corpus and tag soup sanitize to a fixed point."""
    rng = random.Random(20260601)
    pieces = [v.html for v in VECTORS] + list(SOUP)
    for _ in range(300):
        html = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        once = sanitize_html(html).html
        assert sanitize_html(once).html == once, html
        assert_safe(once)


def test_unwrapped_nesting_is_written_as_a_browser_reads_it():
    """A link left inside a link by unwrapping is written as two links."""
    html = sanitize_html(
        '<a href="https://a.example/"><marquee><a href="https://b.example/">x</a>'
        "</marquee></a><h2><svg></svg><h2>y</h2></h2>"
    ).html
    rel = 'target="_blank" rel="noopener noreferrer"'
    assert html == (
        f'<a href="https://a.example/" {rel}></a>'
        f'<a href="https://b.example/" {rel}>x</a><h2></h2><h2>y</h2>'
    )


# -- links -----------------------------------------------------------------------


def test_links_open_in_a_new_tab_without_referrer():
    """Links get target=_blank and rel="noopener noreferrer"."""
    html = sanitize_html(
        '<a href="https://example.com/a?b=1&amp;c=2" target="_self" rel="opener">x</a>'
    ).html
    assert html == (
        '<a href="https://example.com/a?b=1&amp;c=2" target="_blank" '
        'rel="noopener noreferrer">x</a>'
    )


def test_mailto_link_is_kept():
    """mailto: links stay, with the same new-tab attributes."""
    html = sanitize_html('<a href="MAILTO:bob@example.com?subject=Hi">Bob</a>').html
    [a] = parse(html).find("a")
    assert a.attrs["href"] == "mailto:bob@example.com?subject=Hi"
    assert a.attrs["target"] == "_blank"


def test_entity_encoded_http_link_is_decoded_and_kept():
    """An entity-encoded https link reads as the browser would read it."""
    html = sanitize_html('<a href="&#104;ttps://example.com/">x</a>').html
    [a] = parse(html).find("a")
    assert a.attrs["href"] == "https://example.com/"


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "/relative",
        "#top",
        "data:text/html,x",
        "ftp://x.example/",
    ],
)
def test_link_with_other_target_keeps_its_text_only(href):
    """Links to anything but http, https and mailto lose href; the text stays."""
    html = sanitize_html(f'<a href="{href}">label</a>').html
    assert html == "<a>label</a>"


def test_protocol_relative_link_becomes_https():
    """A //host link reads as https, as in the https-served iframe."""
    [a] = parse(sanitize_html('<a href="//example.com/x">x</a>').html).find("a")
    assert a.attrs["href"] == "https://example.com/x"


# -- images ----------------------------------------------------------------------


def test_cid_image_is_rewritten_through_cid_url():
    """cid: images point at the attachment URL cid_url gives (id without <>)."""
    seen = []

    def cid_url(cid: str) -> str | None:
        seen.append(cid)
        return f"/att/{cid}"

    html = sanitize_html(
        '<img src="cid:logo%40example.com" alt="Logo"><img src="CID:<part2>">',
        cid_url=cid_url,
    ).html
    assert seen == ["logo@example.com", "part2"]
    images = parse(html).find("img")
    assert [i.attrs["src"] for i in images] == ["/att/logo@example.com", "/att/part2"]
    assert images[0].attrs["alt"] == "Logo"


def test_unknown_cid_image_is_removed():
    """An image whose cid is not an attachment of the message disappears."""
    result = sanitize_html(
        '<p>a<img src="cid:missing" alt="gone">b</p>', cid_url=known_cid
    )
    assert result.html == "<p>ab</p>"
    assert result.remote_blocked is False


def test_remote_image_is_blocked_until_allowed():
    """Remote images are blocked until allowed: a placeholder keeps alt and size."""
    result = sanitize_html(
        '<img src="https://img.example.com/hero.png" alt="Hero" width="600" '
        'height="200" style="border: 0">'
    )
    [img] = parse(result.html).find("img")
    assert img.attrs == {
        "alt": "Hero",
        "width": "600",
        "height": "200",
        "style": "border: 0",
        "data-blocked": "remote",
    }
    assert "img.example.com" not in result.html
    assert result.remote_blocked is True
    assert result.remote_hosts == ("img.example.com",)


def test_blocked_hosts_are_listed_once_in_order():
    """Each blocked host is reported once, in order of appearance."""
    result = sanitize_html(
        '<img src="https://b.example/1.png"><img src="http://a.example/2.png">'
        '<table><tr><td style="background:url(https://b.example/3.png)"></td></tr>'
        '</table><table background="https://c.example/4.png"></table>'
    )
    assert result.remote_hosts == ("b.example", "a.example", "c.example")


def test_remote_stays_blocked_when_allowed_without_proxy():
    """allow_remote without a proxy_url still blocks: nothing loads directly."""
    result = sanitize_html(
        '<img src="https://img.example.com/a.png">', allow_remote=True
    )
    assert "img.example.com/a.png" not in result.html
    assert result.remote_blocked is True


def test_allowed_remote_images_go_through_the_proxy():
    """Allowed remote images (src, srcset, background, CSS) load via proxy_url."""
    result = sanitize_html(
        '<table background="https://a.example/bg.png"><tr>'
        "<td style=\"background: #fff url('https://a.example/td.png') no-repeat\">"
        '<img src="https://a.example/1.png" '
        'srcset="https://a.example/1.png 1x, https://a.example/2.png 2x">'
        "</td></tr></table>",
        allow_remote=True,
        proxy_url=proxy,
    )
    parsed = parse(result.html)
    [table] = parsed.find("table")
    [td] = parsed.find("td")
    [img] = parsed.find("img")
    assert table.attrs["background"] == proxy("https://a.example/bg.png")
    assert td.attrs["style"] == (
        f'background: #fff url("{proxy("https://a.example/td.png")}") no-repeat'
    )
    assert img.attrs["src"] == proxy("https://a.example/1.png")
    assert img.attrs["srcset"] == (
        f"{proxy('https://a.example/1.png')} 1x, {proxy('https://a.example/2.png')} 2x"
    )
    assert result.remote_blocked is False
    assert result.remote_hosts == ()


def test_blocked_css_background_keeps_the_colour():
    """A blocked CSS background image becomes none; the rest of the rule stays."""
    html = sanitize_html(
        "<table><tr>"
        '<td style="background: #fff url(https://a.example/x.png) no-repeat">x</td>'
        '<td style="background-image: url(https://a.example/y.png); color: red">y</td>'
        "</tr></table>"
    ).html
    first, second = parse(html).find("td")
    assert first.attrs["style"] == "background: #fff none no-repeat"
    assert second.attrs["style"] == "background-image: none; color: red"


def test_cid_css_background_is_resolved():
    """A cid: background in CSS points at the attachment, like a cid: image."""
    html = sanitize_html(
        '<div style="background-image: url(cid:logo)">x</div>', cid_url=known_cid
    ).html
    assert (
        html
        == f'<div style="background-image: url(&quot;{CID_PREFIX}logo&quot;)">x</div>'
    )


def test_dropped_css_declaration_reports_no_host():
    """A declaration dropped for another reason does not count as blocked."""
    result = sanitize_html(
        '<p style="background: url(https://t.example/x.png) expression(1)">x</p>'
    )
    assert result.html == "<p>x</p>"
    assert result.remote_blocked is False


def test_backslashes_in_remote_urls_read_as_slashes():
    """Backslashes before the query read as slashes, as browsers read them."""
    html = sanitize_html(
        '<img src="https:\\\\img.example\\a\\b.png?q=\\x">',
        allow_remote=True,
        proxy_url=proxy,
    ).html
    [img] = parse(html).find("img")
    assert img.attrs["src"] == proxy("https://img.example/a/b.png?q=\\x")


def test_image_without_usable_source_is_removed():
    """An image with no source, or one the policy refuses, disappears."""
    assert (
        sanitize_html('<img alt="a"><img src="data:image/png;base64,AAAA">x').html
        == "x"
    )


# -- layout of ordinary mail -------------------------------------------------------

NEWSLETTER = """
<html><head><title>News</title><style>.x{color:red}</style></head>
<body style="margin:0">
<center>
<table width="600" cellpadding="0" cellspacing="0" border="0" bgcolor="#ffffff"
       align="center" style="border-collapse: collapse; max-width: 600px">
  <tr>
    <td align="left" valign="top" style="padding: 20px 30px; background-color: #f4f4f4;
        font-family: 'Helvetica Neue', Arial, sans-serif; font-size: 16px;
        line-height: 1.5; color: #333333">
      <h1 style="color: #0a66c2; font-size: 24px; margin: 0 0 10px">Monthly news</h1>
      <p style="text-align: justify">Hello <b>reader</b>, <i>welcome</i>
        <font face="Georgia" color="#ff0000" size="3">back</font>.</p>
      <ul style="list-style-type: square"><li>One</li><li>Two</li></ul>
      <ol start="3" type="a"><li value="3">Three</li></ol>
      <blockquote style="border-left: 3px solid #ccc; padding-left: 10px">
        Quote</blockquote>
      <pre style="white-space: pre-wrap"><code>x = 1</code></pre>
      <hr size="1" noshade color="#eeeeee">
      <div style="display: none; max-height: 0">Preheader</div>
      <span style="font-weight: bold !important; text-decoration: underline">
        Bold</span>
      <a href="https://example.com/read" style="color: #ffffff;
         background-color: #0a66c2; padding: 10px 20px; border-radius: 4px;
         display: inline-block">Read more</a>
    </td>
    <td width="30%" style="border: 1px solid #dddddd; vertical-align: middle"
        colspan="2">
      <img src="cid:logo" alt="Logo" width="120" height="40" style="display: block">
    </td>
  </tr>
</table>
</center>
</body></html>
"""


def test_newsletter_tables_colours_and_fonts_survive():
    """Tables, their layout attributes, inline colours and fonts survive."""
    parsed = parse(sanitize_html(NEWSLETTER, cid_url=known_cid).html)
    [table] = parsed.find("table")
    assert table.attrs == {
        "width": "600",
        "cellpadding": "0",
        "cellspacing": "0",
        "border": "0",
        "bgcolor": "#ffffff",
        "align": "center",
        "style": "border-collapse: collapse; max-width: 600px",
    }
    first, second = parsed.find("td")
    assert first.attrs["align"] == "left"
    assert first.attrs["valign"] == "top"
    assert first.attrs["style"] == (
        'padding: 20px 30px; background-color: #f4f4f4; font-family: "Helvetica Neue",'
        " Arial, sans-serif; font-size: 16px; line-height: 1.5; color: #333333"
    )
    assert second.attrs == {
        "width": "30%",
        "style": "border: 1px solid #dddddd; vertical-align: middle",
        "colspan": "2",
    }
    [h1] = parsed.find("h1")
    assert h1.attrs["style"] == "color: #0a66c2; font-size: 24px; margin: 0 0 10px"
    [font] = parsed.find("font")
    assert font.attrs == {"face": "Georgia", "color": "#ff0000", "size": "3"}
    [ul] = parsed.find("ul")
    assert ul.attrs["style"] == "list-style-type: square"
    [ol] = parsed.find("ol")
    assert ol.attrs == {"start": "3", "type": "a"}
    [span] = parsed.find("span")
    assert span.attrs["style"] == (
        "font-weight: bold !important; text-decoration: underline"
    )
    [a] = parsed.find("a")
    assert a.attrs["style"] == (
        "color: #ffffff; background-color: #0a66c2; padding: 10px 20px; "
        "border-radius: 4px; display: inline-block"
    )
    [img] = parsed.find("img")
    assert img.attrs["src"] == f"{CID_PREFIX}logo"
    assert {e.tag for e in parsed.elements} >= {
        "center", "table", "tbody", "tr", "td", "h1", "p", "b", "i", "font", "ul",
        "ol", "li", "blockquote", "pre", "code", "hr", "div", "span", "a", "img",
    }  # fmt: skip
    assert "Monthly news" in parsed.text
    assert "Preheader" in parsed.text
    assert "News" not in parsed.text.replace("Monthly news", "")  # <title> dropped
    assert "color:red" not in parsed.text  # <style> dropped, not shown as text


def test_leading_newlines_in_pre_survive():
    """Blank lines at the top of a <pre> survive, however often sanitized."""
    once = sanitize_html("<pre>\n\n\ncode</pre>").html
    assert once == "<pre>\n\n\ncode</pre>"
    assert sanitize_html(once).html == once
    # html5lib keeps the newline after <pre> in a table cell; browsers drop it.
    once = sanitize_html("<table><tr><td><pre>\n\ncode</pre></td></tr></table>").html
    assert "<pre>\n\ncode</pre>" in once
    assert sanitize_html(once).html == once


def test_unsafe_css_declarations_go_and_safe_ones_stay():
    """Only the unsafe declarations of a style attribute are removed."""
    html = sanitize_html(
        '<p style="color: red; position: fixed; top: 0; display: flex; '
        "width: expression(alert(1)); font-size: 12px; z-index: 10; "
        'cursor: url(https://t.example/c), auto; margin: calc(1px + 2%)">x</p>'
    ).html
    assert (
        html == '<p style="color: red; font-size: 12px; margin: calc(1px + 2%)">x</p>'
    )


def test_style_element_is_dropped_with_its_content():
    """<style> blocks are dropped (not sanitized); their CSS never shows as text."""
    assert sanitize_html("<style>p { color: red }</style><p>x</p>").html == "<p>x</p>"


def test_unknown_elements_are_unwrapped_and_their_text_kept():
    """Unknown or forbidden wrappers go; the text inside stays."""
    html = sanitize_html(
        "<o:p>Outlook</o:p> <form>Name: <label>Bob</label></form> <blink>on</blink>"
    ).html
    assert html == "Outlook Name: Bob on"


def test_text_is_escaped():
    """Escaped markup in text stays escaped."""
    html = sanitize_html("<p>&lt;script&gt; AT&amp;T &quot;q&quot; 1 &lt; 2</p>").html
    assert html == '<p>&lt;script&gt; AT&amp;T "q" 1 &lt; 2</p>'


def test_empty_input_gives_empty_output():
    """Empty input gives empty, unblocked output."""
    result = sanitize_html("")
    assert result.html == ""
    assert isinstance(result.html, SafeString)
    assert result.remote_blocked is False
    assert result.remote_hosts == ()


# -- hostile sizes and garbage -------------------------------------------------------


def test_five_megabytes_of_nested_tags_finish():
    """5 MB of nested tags finish; the input is cut and the result is a string."""
    html = ("<div><span><table><tr><td><b><i><font>x" * 150_000)[:5_000_000]
    result = sanitize_html(html)
    assert isinstance(result.html, str)
    assert result.truncated is True
    assert_safe(result.html)


def test_ten_thousand_deep_nesting_finishes():
    """10,000 nested elements finish; the tree is flattened past a depth limit."""
    result = sanitize_html("<div>" * 10_000 + "deep" + "</div>" * 10_000)
    assert isinstance(result.html, str)
    assert "deep" in result.html
    assert result.truncated is False


def test_piles_of_unclosed_formatting_finish():
    """Thousands of distinct unclosed <b> tags do not multiply the tree."""
    html = "".join(f'<p><b title="{i}"><i title="{i}">x</p>' for i in range(20_000))
    result = sanitize_html(html)
    assert isinstance(result.html, str)
    assert len(result.html) < 10 * len(html)


def test_stray_end_tags_under_deep_nesting_finish():
    """Stray end tags below deep nesting do not cost quadratic time."""
    result = sanitize_html("<div>" * 300 + "</p>" * 100_000)
    assert isinstance(result.html, str)


def test_a_large_ordinary_newsletter_is_kept_whole():
    """Half a megabyte of ordinary newsletter markup is kept whole."""
    block = (
        '<table width="600"><tr><td style="padding: 10px; color: #333">'
        '<font face="Arial"><b>Title</b></font><p>Some <a href="https://ex.com/">'
        "text</a> and <i>more</i></p></td></tr></table>\n"
    )
    html = block * (500_000 // len(block))
    result = sanitize_html(html)
    assert result.truncated is False
    assert result.html.count("<table") == html.count("<table")
    assert result.html.count("<b>Title</b>") == html.count("<b>Title</b>")


def test_input_longer_than_the_limit_is_cut():
    """Input past MAX_HTML_CHARS is cut and flagged as truncated."""
    result = sanitize_html("<p>" + "a" * MAX_HTML_CHARS + "</p>")
    assert result.truncated is True
    assert len(result.html) <= MAX_HTML_CHARS + len("<p></p>")


def test_nul_bytes_surrogates_and_controls_are_handled():
    """NUL bytes, lone surrogates and control characters leave encodable text."""
    result = sanitize_html("a\x00b\ud800c\udfffd\x1b<b>e\x7f</b>\x0c")
    result.html.encode("utf-8")
    assert result.html == "ab\ufffdc\ufffdd<b>e</b>\x0c"


def test_non_string_input_is_refused():
    """Bytes or None are refused with TypeError."""
    with pytest.raises(TypeError):
        sanitize_html(b"<p>x</p>")  # type: ignore[arg-type] - the point of the test
    with pytest.raises(TypeError):
        text_to_html(None)  # type: ignore[arg-type] - the point of the test


# -- plain text ------------------------------------------------------------------------


def link(url: str, label: str | None = None) -> str:
    return (
        f'<a href="{url}" target="_blank" rel="noopener noreferrer">{label or url}</a>'
    )


def test_text_is_escaped_and_newlines_kept():
    """Plain text is escaped and keeps its line breaks as newlines."""
    html = text_to_html('a <b>bold</b> & "q"\r\nline 2\rline 3\n\n  indented')
    assert isinstance(html, SafeString)
    assert html == (
        "a &lt;b&gt;bold&lt;/b&gt; &amp; &quot;q&quot;\nline 2\nline 3\n\n  indented"
    )


def test_text_links_http_https_and_mailto():
    """http, https and mailto URLs and bare addresses become new-tab links."""
    html = text_to_html(
        "See http://example.com/a?b=1&c=2, <https://example.org/x> and "
        "mailto:bob@example.com or write to alice@example.net."
    )
    assert html == (
        f"See {link('http://example.com/a?b=1&amp;c=2')}, "
        f"&lt;{link('https://example.org/x')}&gt; and "
        f"{link('mailto:bob@example.com')} or write to "
        f"{link('mailto:alice@example.net', 'alice@example.net')}."
    )


def test_text_does_not_link_other_schemes():
    """javascript:, data:, ftp: and bare hosts stay plain text."""
    text = "javascript:alert(1) data:text/html,x ftp://example.com www.example.com"
    assert text_to_html(text) == text


def test_text_link_keeps_balanced_parentheses():
    """A closing parenthesis belongs to the URL only when it is balanced."""
    html = text_to_html(
        "(see https://en.wikipedia.org/wiki/Foo_(bar)) and (http://x.example/)"
    )
    assert html == (
        f"(see {link('https://en.wikipedia.org/wiki/Foo_(bar)')}) and "
        f"({link('http://x.example/')})"
    )


def test_text_link_escapes_quotes_in_the_url():
    """A quote cannot break out of the href attribute."""
    html = text_to_html("http://x.example/a'onmouseover='alert(1)")
    assert html == link("http://x.example/a&#x27;onmouseover=&#x27;alert(1)")


def test_text_bare_scheme_is_not_linked():
    """A scheme with nothing after it is not a link."""
    assert text_to_html("http:// and mailto:") == "http:// and mailto:"


def test_text_garbage_is_handled():
    """NUL bytes and lone surrogates in text leave encodable output."""
    html = text_to_html("a\x00b\ud800c")
    html.encode("utf-8")
    assert html == "ab\ufffdc"


def test_huge_text_finishes():
    """Megabytes of text without spaces or with many @ signs finish."""
    assert len(text_to_html("a" * 2_000_000)) == 2_000_000
    assert isinstance(text_to_html("a@" * 500_000 + " http://" * 100_000), str)
