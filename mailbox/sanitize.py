"""HTML mail -> safe HTML, and plain-text mail -> HTML.

The one home of bleach in the project (it has had no maintainer since June 2026;
nothing else may import it, so a swap stays cheap). The rest of the app sees
:func:`sanitize_html`, :func:`text_to_html` and :class:`SanitizedHtml` only.

How ``sanitize_html`` works:

1. The input is cleaned (lone surrogates and control characters) and cut at
   :data:`MAX_HTML_CHARS`.
2. bleach's vendored html5lib parses it as a browser would (a fragment in a
   ``<div>``, scripting on, entities decoded), with a guard on the depth of the
   open-element stack and on the active formatting list: html5lib is quadratic
   in both, so 10,000 nested tags would otherwise take minutes.
3. A walker over the tree drops comments and whole subtrees whose content must
   never be shown (``<script>``, ``<style>``, ``<svg>``, ``<math>``,
   ``<template>``, ``<noscript>``, frames, objects, form controls...).
4. bleach's sanitizer filter keeps allow-listed tags and attributes (other tags
   are unwrapped, their text kept) and sends every ``style`` attribute through
   :class:`_EmailCss`, a bleach ``CSSSanitizer`` that checks values as well as
   property names.
5. A policy filter applies the link and image rules: links keep only
   http/https/mailto and open in a new tab with ``rel="noopener noreferrer"``;
   images keep only ``cid:`` (resolved through ``cid_url``) or remote
   http(s) URLs, which are blocked (placeholder) or sent through ``proxy_url``.
6. html5lib's serializer writes the tree back, escaping every text and
   attribute value.
7. The output is parsed and serialized again until it reads back as written
   (unwrapping a tag can leave nestings such as ``<a>`` in ``<a>`` that a
   browser would rebuild differently), so the tree a browser builds is the one
   serialized here and ``sanitize_html(sanitize_html(x)) == sanitize_html(x)``.

``<style>`` elements are dropped, not sanitized: scoping a sender's style sheet
to the message would need a CSS rule rewriter, and newsletters inline the
styles that matter. The output contains no element that changes how the HTML
tokenizer reads its content (raw text, RCDATA, foreign content, templates,
comments), so no re-parse can turn text into markup.

Cost: html5lib is pure Python (about 0.3-0.5 MB/s, and step 7 parses once
more), so callers should cache the result per message rather than sanitize on
every view.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from html import escape as _escape
from typing import Any
from urllib.parse import unquote

import tinycss2
from bleach._vendor.html5lib import HTMLParser
from bleach._vendor.html5lib._tokenizer import HTMLTokenizer
from bleach._vendor.html5lib.constants import (
    formattingElements,
    tokenTypes,
    voidElements,
)
from bleach._vendor.html5lib.serializer import HTMLSerializer
from bleach._vendor.html5lib.treebuilders.base import Marker
from bleach.css_sanitizer import CSSSanitizer
from bleach.sanitizer import BleachSanitizerFilter
from django.utils.safestring import SafeString, mark_safe
from tinycss2.ast import IdentToken, URLToken
from tinycss2.serializer import serialize_string_value

logger = logging.getLogger(__name__)

__all__ = ["MAX_HTML_CHARS", "SanitizedHtml", "sanitize_html", "text_to_html"]

#: Longer HTML bodies are cut here (html5lib parses roughly 0.3-0.5 MB/s).
#: For scale: Gmail clips messages at 102 KB.
MAX_HTML_CHARS = 1_000_000
#: Start tags that would make the open-element stack deeper are dropped.
MAX_DEPTH = 256
#: Formatting start tags (b, i, font...) past this many active ones are dropped.
MAX_ACTIVE_FORMATTING = 12
#: Budget of the parser's tag handling, in steps of open-element stack: enough
#: for a megabyte of ordinary mail, and a bound on the time hostile input costs.
MAX_PARSE_WORK = 5_000_000
#: What re-opening one formatting element costs, in the same steps.
CLONE_WORK = 100
#: Re-parses of the output until it reads back as written (usually one).
MAX_REPARSES = 3

#: The value of the attribute that marks a blocked remote image.
BLOCKED_MARK = "remote"

_TAGS = frozenset(
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

# Elements removed together with everything inside them. Other elements that
# are not in _TAGS (html, body, form, button, label, custom elements, o:p...)
# are unwrapped: the tag goes, the text stays.
_DROP_WITH_CONTENT = frozenset(
    {
        "applet", "audio", "base", "basefont", "bgsound", "button", "canvas",
        "datalist", "dialog", "embed", "frame", "frameset", "head", "iframe",
        "input", "keygen", "link", "math", "meta", "noembed", "noframes",
        "noscript", "object", "optgroup", "option", "param", "portal", "script",
        "select", "source", "style", "svg", "template", "textarea", "title",
        "track", "video", "xmp",
    }
)  # fmt: skip

_GLOBAL_ATTRIBUTES = frozenset({"style", "title", "dir", "lang"})
_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href"}),
    "img": frozenset(
        {"src", "srcset", "alt", "width", "height", "border", "align", "hspace",
         "vspace"}
    ),
    "table": frozenset(
        {"width", "height", "border", "cellpadding", "cellspacing", "bgcolor",
         "background", "align", "summary", "frame", "rules"}
    ),
    "td": frozenset(
        {"width", "height", "colspan", "rowspan", "bgcolor", "background", "align",
         "valign", "nowrap", "scope", "abbr"}
    ),
    "tr": frozenset({"height", "bgcolor", "background", "align", "valign"}),
    "thead": frozenset({"align", "valign", "bgcolor"}),
    "tbody": frozenset({"align", "valign", "bgcolor"}),
    "tfoot": frozenset({"align", "valign", "bgcolor"}),
    "col": frozenset({"span", "width", "align", "valign"}),
    "colgroup": frozenset({"span", "width", "align", "valign"}),
    "caption": frozenset({"align"}),
    "font": frozenset({"color", "face", "size"}),
    "hr": frozenset({"width", "size", "noshade", "color", "align"}),
    "ol": frozenset({"start", "type", "reversed"}),
    "ul": frozenset({"type"}),
    "li": frozenset({"value", "type"}),
    "div": frozenset({"align"}),
    "p": frozenset({"align"}),
    "center": frozenset(),
    "del": frozenset({"datetime"}),
    "ins": frozenset({"datetime"}),
    "time": frozenset({"datetime"}),
    **{f"h{level}": frozenset({"align"}) for level in range(1, 7)},
}  # fmt: skip
_ATTRIBUTES["th"] = _ATTRIBUTES["td"]

_CSS_PROPERTIES = frozenset(
    {
        "color", "background", "background-color", "background-image",
        "background-position", "background-repeat", "background-size",
        "font", "font-family", "font-size", "font-style", "font-variant",
        "font-weight", "line-height", "letter-spacing", "word-spacing",
        "text-align", "text-decoration", "text-decoration-color",
        "text-decoration-line", "text-decoration-style", "text-indent",
        "text-transform", "text-overflow", "text-shadow", "white-space",
        "word-break", "word-wrap", "overflow-wrap", "direction", "vertical-align",
        "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
        "padding", "padding-top", "padding-right", "padding-bottom",
        "padding-left",
        "border", "border-top", "border-right", "border-bottom", "border-left",
        "border-color", "border-style", "border-width",
        "border-top-color", "border-right-color", "border-bottom-color",
        "border-left-color", "border-top-style", "border-right-style",
        "border-bottom-style", "border-left-style", "border-top-width",
        "border-right-width", "border-bottom-width", "border-left-width",
        "border-radius", "border-top-left-radius", "border-top-right-radius",
        "border-bottom-left-radius", "border-bottom-right-radius",
        "border-collapse", "border-spacing",
        "width", "height", "min-width", "min-height", "max-width", "max-height",
        "display", "float", "clear", "overflow", "overflow-x", "overflow-y",
        "visibility", "opacity", "box-sizing",
        "list-style-type", "list-style-position",
        "table-layout", "caption-side", "empty-cells",
    }
)  # fmt: skip
# Only these may carry an image; anywhere else a url() drops the declaration.
_CSS_IMAGE_PROPERTIES = frozenset({"background", "background-image"})
_CSS_DISPLAY_VALUES = frozenset(
    {
        "block", "inline", "inline-block", "none", "list-item", "table",
        "inline-table", "table-row", "table-cell", "table-caption",
        "table-row-group", "table-header-group", "table-footer-group",
        "table-column", "table-column-group",
    }
)  # fmt: skip
_CSS_FUNCTIONS = frozenset(
    {
        "rgb", "rgba", "hsl", "hsla", "calc",
        "linear-gradient", "radial-gradient",
        "repeating-linear-gradient", "repeating-radial-gradient",
    }
)  # fmt: skip
_CSS_LITERALS = frozenset({",", "/", "+", "-", "*", "%"})
_CSS_PLAIN_TOKENS = frozenset(
    {"whitespace", "ident", "number", "percentage", "dimension", "hash", "string"}
)

# Characters a browser strips around a URL and removes inside it
# (WHATWG URL "basic URL parser"), and what else is no part of a sane URL.
_URL_STRIP = "".join(chr(c) for c in range(0x21))
_URL_REMOVE_RE = re.compile(r"[\t\n\r]")
_URL_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
_SRCSET_DESCRIPTOR_RE = re.compile(r"(?:\d+w|\d+(?:\.\d+)?x)?")

# Lone surrogates cannot be encoded; C0 controls (except whitespace) and DEL
# have no business in mail and are an old trick to split keywords.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class SanitizedHtml:
    """The result of :func:`sanitize_html`."""

    html: SafeString
    #: True if any remote resource was removed or replaced by a placeholder.
    remote_blocked: bool
    #: Hosts of the blocked remote resources, in order of appearance.
    remote_hosts: tuple[str, ...]
    #: True if the input was longer than MAX_HTML_CHARS and was cut.
    truncated: bool = False


def sanitize_html(
    html: str,
    *,
    allow_remote: bool = False,
    cid_url: Callable[[str], str | None] = lambda cid: None,
    proxy_url: Callable[[str], str] | None = None,
) -> SanitizedHtml:
    """Return the HTML of a mail, made safe to show.

    Scripts, event handlers, forms, frames, objects, ``<style>``, SVG and MathML
    are removed; links keep http/https/mailto targets only and open in a new tab
    with ``rel="noopener noreferrer"``; ``style`` attributes keep a safe list of
    CSS properties without ``url()``, ``expression()`` or positioning.

    Images may come from ``cid:`` URLs, rewritten to ``cid_url(content_id)``
    (the Content-ID without ``<>``; an image whose content id is unknown, i.e.
    ``cid_url`` returns None, is removed), or from remote http(s) URLs. Remote
    images (``<img src>``/``srcset``, ``background`` attributes, CSS
    ``background`` images) are blocked until allowed: an ``<img>`` keeps its
    alt text, size and style, loses ``src``/``srcset`` and gets
    ``data-blocked="remote"``; other remote images disappear. The result then
    says ``remote_blocked`` and lists the hosts. With ``allow_remote`` and a
    ``proxy_url``, remote images are rewritten to ``proxy_url(url)`` instead.
    A sender's URL never reaches the output as something a browser would load.

    Raises TypeError if ``html`` is not a string.
    """
    if not isinstance(html, str):
        raise TypeError(f"html must be str, not {type(html).__name__}")
    html, truncated = _clean_input(html, limit=MAX_HTML_CHARS)
    if truncated:
        logger.info("HTML body cut at %s characters", MAX_HTML_CHARS)
    policy = _Policy(
        allow_remote=allow_remote and proxy_url is not None,
        cid_url=cid_url,
        proxy_url=proxy_url,
    )
    output = _render(html, policy) if html else ""
    return SanitizedHtml(
        html=mark_safe(output),  # noqa: S308 - built by the sanitizer above
        remote_blocked=policy.remote_blocked,
        remote_hosts=tuple(policy.remote_hosts),
        truncated=truncated,
    )


def text_to_html(text: str) -> SafeString:
    """Return plain text as HTML: escaped, http/https/mailto URLs linked.

    Line breaks stay newline characters (no ``<br>``), so the container shows
    the text with ``white-space: pre-wrap``. URLs starting with ``http://``,
    ``https://`` or ``mailto:`` and bare e-mail addresses become links that
    open in a new tab with ``rel="noopener noreferrer"``; nothing else (no
    ``javascript:``, no ``www.`` guesses) is linked. Trailing punctuation and
    unbalanced closing brackets stay out of links.

    Raises TypeError if ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    text, _ = _clean_input(text, limit=None)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    parts = []
    for chunk in _WHITESPACE_SPLIT_RE.split(text):
        if not chunk or chunk.isspace():
            parts.append(chunk)
        else:
            parts.append(_linkify_word(chunk))
    return mark_safe("".join(parts))  # noqa: S308 - every piece escaped


# -- input ---------------------------------------------------------------------


def _clean_input(text: str, *, limit: int | None) -> tuple[str, bool]:
    truncated = limit is not None and len(text) > limit
    if truncated:
        text = text[:limit]
    text = _SURROGATE_RE.sub("\ufffd", text)
    text = _CONTROL_RE.sub("", text)
    return text, truncated


# -- parsing -------------------------------------------------------------------


class _BoundedTokenizer(HTMLTokenizer):
    """html5lib tokenizer that keeps the parser's work bounded.

    html5lib walks the stack of open elements for scope checks, and re-opens
    every active formatting element (up to the last marker) at each new run of
    text after a block closed them, so deep nesting, stray end tags and piles
    of distinct unclosed ``<b>``/``<font>`` tags cost quadratic time and can
    multiply the tree. Start tags past MAX_DEPTH or MAX_ACTIVE_FORMATTING are
    dropped (browsers likewise flatten trees deeper than a few hundred levels),
    and once the tags seen have cost MAX_PARSE_WORK steps of stack, every
    further tag is dropped. Text is always kept.
    """

    _START = tokenTypes["StartTag"]
    _TAGS = frozenset({_START, tokenTypes["EndTag"], tokenTypes["EmptyTag"]})
    _REOPENING = frozenset(
        {_START, tokenTypes["Characters"], tokenTypes["SpaceCharacters"]}
    )
    _FORMATTING = frozenset(name for _, name in formattingElements)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        tree = self.parser.tree
        work = 0
        for token in super().__iter__():
            kind = token["type"]
            if kind in self._REOPENING:
                work += CLONE_WORK * _formatting_to_reopen(tree)
            if kind in self._TAGS:
                depth = len(tree.openElements)
                work += depth + 1
                if work > MAX_PARSE_WORK:
                    continue
                if kind == self._START:
                    name = token["name"]
                    if name not in voidElements and depth >= MAX_DEPTH:
                        continue
                    if name in self._FORMATTING and _too_many_formatting(tree):
                        continue
            yield token


def _formatting_to_reopen(tree: Any) -> int:
    """Count the formatting elements html5lib would clone at the next text."""
    count = 0
    for entry in reversed(tree.activeFormattingElements):
        if entry is Marker or entry in tree.openElements:
            break
        count += 1
    return count


def _too_many_formatting(tree: Any) -> bool:
    """Tell whether MAX_ACTIVE_FORMATTING entries follow the last marker."""
    entries = reversed(tree.activeFormattingElements)
    for count, entry in enumerate(entries, start=1):
        if entry is Marker:
            return False
        if count >= MAX_ACTIVE_FORMATTING:
            return True
    return False


class _Parser(HTMLParser):
    """html5lib parser with the bounded tokenizer and no error log.

    html5lib's "in cell" and "in caption" modes insert whitespace themselves
    instead of using the "in body" rules as the HTML standard says, so the
    newline after ``<pre>`` inside a table cell is kept where a browser drops
    it (and each sanitize round trip would add a line). Those two modes get
    the "in body" handling here.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in ("inCell", "inCaption"):
            phase_class = _with_body_whitespace(type(self.phases[name]))
            self.phases[name] = phase_class(self, self.tree)

    def _parse(
        self,
        stream: str,
        innerHTML: bool = False,
        container: str = "div",
        scripting: bool = False,
        **kwargs: Any,
    ) -> None:
        self.innerHTMLMode = innerHTML
        self.container = container
        self.scripting = scripting
        self.tokenizer = _BoundedTokenizer(stream, parser=self, **kwargs)
        self.reset()
        self.mainLoop()  # a str input never asks for a re-parse

    def parseError(self, errorcode: str = "", datavars: Any = None) -> None:
        """Ignore parse errors: hostile input has millions of them."""


@functools.cache
def _with_body_whitespace(phase_class: type) -> type:
    class Phase(phase_class):  # type: ignore[misc,valid-type] - html5lib's class
        __slots__ = ()

        def processSpaceCharacters(self, token: dict[str, Any]) -> None:
            self.parser.phases["inBody"].processSpaceCharacters(token)

    return Phase


def _render(html: str, policy: _Policy) -> str:
    stream: Iterable[dict[str, Any]] = _EmailSanitizerFilter(
        source=_walk(_parse(html)),
        allowed_tags=_TAGS,
        attributes=_attribute_allowed,
        allowed_protocols=frozenset({"http", "https", "mailto", "cid"}),
        strip_disallowed_tags=True,
        strip_html_comments=True,
        css_sanitizer=_EmailCss(policy),
    )
    output = _serialize(policy.apply(stream))
    # Unwrapping a tag can leave nestings the parser never builds (<a> in <a>,
    # <h2> in <h2>, blocks in <p>), which a browser re-parses differently.
    # Re-parse until the markup reads back as written, so the browser's tree is
    # the one serialized here. A re-parse moves allowed elements around and
    # implies a few (tbody, tr, p); it creates no attribute. Tags outside the
    # allow-list are unwrapped all the same, should one ever appear.
    for _ in range(MAX_REPARSES):
        again = _serialize(_allowed_tags_only(_walk(_parse(output))))
        if again == output:
            break
        output = again
    return output


def _allowed_tags_only(
    tokens: Iterable[dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    for token in tokens:
        if "name" not in token or token["name"] in _TAGS:
            yield token


def _parse(html: str) -> Any:
    parser = _Parser(namespaceHTMLElements=False)
    # scripting=True parses <noscript> as a browser with JavaScript does; its
    # content is dropped either way.
    return parser.parseFragment(html, container="div", scripting=True)


def _serialize(tokens: Iterable[dict[str, Any]]) -> str:
    serializer = HTMLSerializer(
        quote_attr_values="always",
        quote_char='"',
        use_best_quote_char=False,
        minimize_boolean_attributes=False,
        omit_optional_tags=False,
        escape_lt_in_attrs=True,
        resolve_entities=False,
        inject_meta_charset=False,
        alphabetical_attributes=False,
    )
    return str(serializer.render(_pre_newlines(tokens)))


def _pre_newlines(tokens: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Double a newline that starts a ``<pre>``.

    The parser drops the first newline after ``<pre>`` (HTML "in body" rules),
    so the fragment serialization algorithm writes one more; html5lib's
    serializer does not, and each round trip would eat a line.
    """
    after_pre = False
    for token in tokens:
        if after_pre and token["type"] == "Characters" and token["data"][:1] == "\n":
            token = {**token, "data": "\n" + token["data"]}
        after_pre = token["type"] == "StartTag" and token["name"] == "pre"
        yield token


def _characters(data: str) -> dict[str, Any]:
    return {"type": "Characters", "data": data}


def _walk(fragment: Any) -> Iterator[dict[str, Any]]:
    """Yield html5lib tokens for an etree fragment, in document order.

    Comments, processing instructions, non-HTML (SVG, MathML) elements and the
    elements in _DROP_WITH_CONTENT are skipped with all their descendants;
    attributes with a namespace or prefix are dropped.

    html5lib's own etree walker is quadratic on wide trees (it looks up each
    parent's index with list.index), so this one keeps an explicit stack.
    """
    if fragment.text:
        yield _characters(fragment.text)
    stack: list[tuple[Any, Iterator[Any]]] = [(None, iter(fragment))]
    while stack:
        parent, children = stack[-1]
        element = next(children, None)
        if element is None:
            stack.pop()
            if parent is not None:
                yield {"type": "EndTag", "name": parent.tag, "namespace": None}
                if parent.tail:
                    yield _characters(parent.tail)
            continue
        tag = element.tag
        if isinstance(tag, str) and "{" not in tag and tag not in _DROP_WITH_CONTENT:
            data = {
                (None, name): value
                for name, value in element.attrib.items()
                if "{" not in name and ":" not in name
            }
            if tag in voidElements:
                yield {"type": "EmptyTag", "name": tag, "namespace": None, "data": data}
            else:
                yield {"type": "StartTag", "name": tag, "namespace": None, "data": data}
                if element.text:
                    yield _characters(element.text)
                stack.append((element, iter(element)))
                continue
        if element.tail:
            yield _characters(element.tail)


class _EmailSanitizerFilter(BleachSanitizerFilter):
    """bleach's sanitizer over decoded text.

    bleach normally tokenizes without decoding entities and re-tokenizes text
    into entity tokens; this pipeline decodes entities while parsing (so the
    URL and CSS checks see what a browser sees) and lets the serializer escape,
    so text passes through as it is.
    """

    def sanitize_characters(self, token: dict[str, Any]) -> dict[str, Any]:
        return token


def _attribute_allowed(tag: str, name: str, value: str) -> bool:
    if name in _GLOBAL_ATTRIBUTES or name in _ATTRIBUTES.get(tag, ()):
        return True
    # The placeholder mark survives a second pass; on its own it loads nothing.
    return tag == "img" and name == "data-blocked" and value == BLOCKED_MARK


# -- link and image policy -------------------------------------------------------


def _clean_url(value: str) -> str:
    return _URL_REMOVE_RE.sub("", value.strip(_URL_STRIP))


def _split_scheme(url: str) -> tuple[str, str]:
    """Return (lower-case scheme, rest); scheme "" for a relative URL.

    A URL starting with two slashes (or backslashes, which browsers read as
    slashes) is protocol-relative and reads as https.
    """
    if url[:2] in ("//", "\\\\", "/\\", "\\/"):
        return "https", url
    match = _SCHEME_RE.match(url)
    if match is None:
        return "", url
    return match.group(1).lower(), url[match.end() :]


def _remote(scheme: str, rest: str) -> tuple[str, str] | None:
    """Return (normalized URL, host) of an http(s) URL, None if it has no host.

    Browsers read ``http:host``, ``http:/host`` and ``http:\\\\host`` as
    ``http://host``, and backslashes before the query as slashes; the
    normalized URL spells that out.
    """
    split = re.search(r"[?#]", rest)
    head, tail = (rest[: split.start()], rest[split.start() :]) if split else (rest, "")
    rest = head.replace("\\", "/").lstrip("/") + tail
    authority = re.split(r"[/\\?#]", rest, maxsplit=1)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        host = host.partition("]")[0] + "]"
    else:
        host = host.partition(":")[0]
    host = host.lower()
    if not host or _URL_CONTROL_RE.search(rest):
        return None
    return f"{scheme}://{rest}", host


class _Policy:
    """Link and image rules for one call, and what they blocked."""

    def __init__(
        self,
        *,
        allow_remote: bool,
        cid_url: Callable[[str], str | None],
        proxy_url: Callable[[str], str] | None,
    ) -> None:
        self.allow_remote = allow_remote
        self.cid_url = cid_url
        self.proxy_url = proxy_url
        self.remote_blocked = False
        self.remote_hosts: list[str] = []

    def block(self, host: str) -> None:
        self.remote_blocked = True
        if host not in self.remote_hosts:
            self.remote_hosts.append(host)

    def link(self, value: str) -> str | None:
        """Return the href to use for a link, None to drop it."""
        url = _clean_url(value)
        scheme, rest = _split_scheme(url)
        if scheme == "mailto":
            return None if _URL_CONTROL_RE.search(url) else f"mailto:{rest}"
        if scheme in ("http", "https"):
            remote = _remote(scheme, rest)
            return remote[0] if remote else None
        return None

    def image(self, value: str) -> tuple[str | None, bool]:
        """Return (URL to load, blocked) for an image URL.

        (url, False): load url; (None, True): a remote image was blocked;
        (None, False): not an image this policy shows.
        """
        url = _clean_url(value)
        scheme, rest = _split_scheme(url)
        if scheme == "cid":
            content_id = unquote(rest).strip().removeprefix("<").removesuffix(">")
            return (self.cid_url(content_id) if content_id else None), False
        if scheme not in ("http", "https"):
            return None, False
        remote = _remote(scheme, rest)
        if remote is None:
            return None, False
        if self.allow_remote and self.proxy_url is not None:
            return self.proxy_url(remote[0]), False
        self.block(remote[1])
        return None, True

    def srcset(self, value: str) -> tuple[str | None, bool]:
        """Return (rewritten srcset or None, blocked) for a srcset attribute."""
        candidates = []
        blocked = False
        for url, descriptor in _parse_srcset(value):
            new_url, was_blocked = self.image(url)
            blocked = blocked or was_blocked
            if new_url is not None:
                new_url = new_url.replace(" ", "%20").replace(",", "%2C")
                candidates.append(f"{new_url} {descriptor}".strip())
        return (", ".join(candidates) or None), blocked

    def apply(self, tokens: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Apply the link and image rules to a sanitized token stream."""
        for token in tokens:
            kind = token["type"]
            if kind not in ("StartTag", "EmptyTag"):
                yield token
                continue
            attrs: dict[tuple[str | None, str], str] = token["data"]
            if attrs.get((None, "style")) == "":
                del attrs[(None, "style")]
            name = token["name"]
            if name == "a":
                self._apply_link(attrs)
            elif name == "img" and not self._apply_image(attrs):
                continue
            if (None, "background") in attrs:
                url, _ = self.image(attrs.pop((None, "background")))
                if url is not None:
                    attrs[(None, "background")] = url
            yield token

    def _apply_link(self, attrs: dict[tuple[str | None, str], str]) -> None:
        href = attrs.pop((None, "href"), None)
        url = self.link(href) if href is not None else None
        if url is not None:
            attrs[(None, "href")] = url
            attrs[(None, "target")] = "_blank"
            attrs[(None, "rel")] = "noopener noreferrer"

    def _apply_image(self, attrs: dict[tuple[str | None, str], str]) -> bool:
        """Rewrite an image's attributes; return False to drop the image."""
        src = attrs.pop((None, "src"), None)
        srcset = attrs.pop((None, "srcset"), None)
        new_src, src_blocked = self.image(src) if src is not None else (None, False)
        new_srcset, srcset_blocked = (
            self.srcset(srcset) if srcset is not None else (None, False)
        )
        if new_src is not None:
            attrs[(None, "src")] = new_src
        if new_srcset is not None:
            attrs[(None, "srcset")] = new_srcset
        if new_src is not None or new_srcset is not None:
            attrs.pop((None, "data-blocked"), None)
            return True
        if src_blocked or srcset_blocked:
            attrs[(None, "data-blocked")] = BLOCKED_MARK
            return True
        return attrs.get((None, "data-blocked")) == BLOCKED_MARK


def _parse_srcset(value: str) -> Iterator[tuple[str, str]]:
    """Yield (url, descriptor) pairs of a srcset; bad descriptors skip a pair."""
    position = 0
    length = len(value)
    while position < length:
        while position < length and (
            value[position].isspace() or value[position] == ","
        ):
            position += 1
        if position >= length:
            return
        end = position
        while end < length and not value[end].isspace():
            end += 1
        url = value[position:end]
        position = end
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            comma = value.find(",", position)
            comma = length if comma == -1 else comma
            descriptor = value[position:comma].strip()
            position = comma + 1
        if url and _SRCSET_DESCRIPTOR_RE.fullmatch(descriptor):
            yield url, descriptor


# -- CSS -----------------------------------------------------------------------


class _EmailCss(CSSSanitizer):
    """bleach's CSS sanitizer hook, with values checked as well as names.

    bleach's own ``CSSSanitizer`` filters property names only, so with its
    default list ``cursor: url(https://tracker/)`` or
    ``width: expression(...)`` pass untouched. Here a declaration survives
    when its property is allowed and its value holds only plain tokens and
    harmless functions (rgb, calc, gradients...). ``url()`` is allowed only in
    ``background``/``background-image`` and only as a resolved ``cid:`` image
    or a proxied remote one; a blocked image becomes ``none``. Comments and
    anything tinycss2 reads as a rule or at-rule are dropped.
    """

    def __init__(self, policy: _Policy) -> None:
        super().__init__(
            allowed_css_properties=_CSS_PROPERTIES, allowed_svg_properties=()
        )
        self.policy = policy

    def sanitize_css(self, style: str) -> str:
        declarations = []
        for node in tinycss2.parse_blocks_contents(
            style, skip_comments=True, skip_whitespace=True
        ):
            if node.type != "declaration":
                continue
            name = node.lower_name
            if name not in self.allowed_css_properties:
                continue
            value = self._value(name, node.value)
            if not value:
                continue
            important = " !important" if node.important else ""
            declarations.append(f"{name}: {value}{important}")
        return "; ".join(declarations)

    def _value(self, name: str, tokens: list[Any]) -> str | None:
        if name == "display":
            words = [t for t in tokens if t.type not in ("whitespace", "comment")]
            if len(words) != 1 or words[0].type != "ident":
                return None
            value = words[0].lower_value
            return value if value in _CSS_DISPLAY_VALUES else None
        kept: list[tuple[Any, str | None]] = []
        for token in tokens:
            if token.type == "comment":
                continue
            url = _css_url(token)
            if url is not None and name not in _CSS_IMAGE_PROPERTIES:
                return None
            if url is None and not _css_token_safe(token):
                return None
            kept.append((token, url))
        # Only a declaration that survives consults the image policy, so a
        # dropped one reports no blocked host.
        value = [
            token if url is None else self._image_token(token, url)
            for token, url in kept
        ]
        return tinycss2.serialize(value).strip() or None

    def _image_token(self, token: Any, url: str) -> Any:
        new_url, _ = self.policy.image(url)
        if new_url is None:
            return IdentToken(token.source_line, token.source_column, "none")
        representation = f'url("{serialize_string_value(new_url)}")'
        return URLToken(token.source_line, token.source_column, new_url, representation)


def _css_url(token: Any) -> str | None:
    """Return the URL of a ``url(...)`` token, None for any other token."""
    if token.type == "url":
        return str(token.value)
    if token.type == "function" and token.lower_name in ("url", "src"):
        args = [t for t in token.arguments if t.type not in ("whitespace", "comment")]
        if len(args) == 1 and args[0].type == "string":
            return str(args[0].value)
        return ""  # src(var(--x)) and friends: load nothing
    return None


def _css_token_safe(token: Any) -> bool:
    stack = [token]
    while stack:
        node = stack.pop()
        kind = node.type
        if kind in _CSS_PLAIN_TOKENS or kind == "comment":
            continue
        if kind == "literal" and node.value in _CSS_LITERALS:
            continue
        if kind == "function" and node.lower_name in _CSS_FUNCTIONS:
            stack.extend(node.arguments)
            continue
        if kind == "() block":
            stack.extend(node.content)
            continue
        return False
    return True


# -- plain text ----------------------------------------------------------------

_WHITESPACE_SPLIT_RE = re.compile(r"(\s+)")
_URL_START_RE = re.compile(r"https?://|mailto:", re.IGNORECASE)
_URL_END_RE = re.compile(r'[<>"\x00-\x20\x7f]')
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){1,8}"
)
_TRAILING_PUNCTUATION = ".,;:!?'\"*"
_WORD_PUNCTUATION = "<>()[]{}\"'.,;:!?*"
_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _link(href: str, label: str) -> str:
    return (
        f'<a href="{_escape(href)}" target="_blank" rel="noopener noreferrer">'
        f"{_escape(label)}</a>"
    )


def _trim_url(url: str) -> str:
    while url:
        last = url[-1]
        unbalanced = last in _CLOSERS and url.count(_CLOSERS[last]) < url.count(last)
        if last not in _TRAILING_PUNCTUATION and not unbalanced:
            break
        url = url[:-1]
    return url


def _linkify_word(word: str) -> str:
    """Escape one whitespace-free chunk of text, linking the URLs in it."""
    out = []
    position = 0
    linked = False
    while True:
        start = _URL_START_RE.search(word, position)
        if start is None:
            break
        end_match = _URL_END_RE.search(word, start.end())
        end = end_match.start() if end_match else len(word)
        url = _trim_url(word[start.start() : end])
        if len(url) <= len(start.group()):
            out.append(_escape(word[position : start.end()]))
            position = start.end()
            continue
        out.append(_escape(word[position : start.start()]))
        out.append(_link(url, url))
        position = start.start() + len(url)
        linked = True
    if linked:
        out.append(_escape(word[position:]))
        return "".join(out)
    core = word.strip(_WORD_PUNCTUATION)
    if core and "@" in core and _EMAIL_RE.fullmatch(core):
        head = word.index(core)
        return (
            _escape(word[:head])
            + _link(f"mailto:{core}", core)
            + _escape(word[head + len(core) :])
        )
    return _escape(word)
