"""An email made ready to send: its CSS inlined, and a plain-text part made from its HTML.

Neither step ever raises, crashes or reaches outside the process. The inliner never loads a stylesheet:
`<link>` tags are dropped, remote and local alike (css_inline would otherwise read a local path named in
an `href`). When a library fails on some input, the email still goes: inlining falls back to the HTML as
it was, and the text part to the words between the tags.

The choices, and why:
- Rules are inlined and their `<style>` block dropped; at-rules (`@media`, the mobile layout) cannot be
  inlined, so they stay in a `<style>` of their own (css_inline's `keep_at_rules`). Inlined CSS is
  minified: the same speed, a smaller message (Gmail clips a message past 102 KB).
- The text part is made from the HTML as written, not the inlined copy: inscriptis reads every `style`
  attribute, and the inlined copy took a third longer for the same words. A hidden block (the preheader)
  must therefore say `display: none` in its own `style` attribute, as email clients want anyway.
- Tables in an email are layout, not data, so the text part reads them as blocks, one cell after the
  other, rather than laying out columns padded with spaces. Links read `[words](https://...)`; a link
  with no words (an image link) is left out.
"""

from __future__ import annotations

import html as html_entities
import logging
import re
from collections import Counter
from typing import Any

import css_inline
import lxml.etree  # inscriptis's parser: its error log says what it cut
import lxml.html
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_engine import Inscriptis
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement
from inscriptis.model.tag import CustomHtmlTagHandlerMapping

log = logging.getLogger("shopkeeper.content")

# css_inline recurses once per level of nesting, on the calling thread's stack, and a Rust stack overflow
# ends the process (3,000 nested tables did, on an 8 MB stack; 500 divs on a 256 KB one). An email nests
# some 20 levels; past this many, the CSS goes as written. (libxml2's own limit, which the text part
# meets, is the same 256.)
MAX_INLINED_DEPTH = 256

_INLINER = css_inline.CSSInliner(
    inline_style_tags=True,
    keep_style_tags=False,
    keep_at_rules=True,
    keep_link_tags=False,
    load_remote_stylesheets=False,
    minify_css=True,
)

_TABLE_TAGS = ("table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption")


def _no_start(state: Any, attributes: Any) -> None:
    """A table tag starts no table layout (see the module docstring)."""


def _no_end(state: Any) -> None:
    """A table tag ends no table layout."""


_SHOWS_NOTHING = ("head", "script", "style", "template", "img")  # images: display_images is off
_SHOWS_ITS_WORDS = ("tbody", "thead", "tfoot", "b", "strong", "i", "em", "u", "small", "font")
_TEXT_CONFIG = ParserConfig(
    css={**CSS_PROFILES["strict"], **{tag: HtmlElement(display=Display.block) for tag in _TABLE_TAGS}},
    display_links=True,
    custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping(
        start_tag_mapping=dict.fromkeys(("table", "tr", "td", "th"), _no_start),
        end_tag_mapping=dict.fromkeys(("table", "td", "th"), _no_end),
    ),
)

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EMPTY_LINK = re.compile(r"\[\s*\]\([^()\s]*\)[ \t]*")  # with the spaces after it
_BLANK_LINES = re.compile(r"\n{3,}")
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^<>]*>")
# The fallback's tokens: a tag, comment or doctype (no `<` inside, so each `<` is scanned once), or text
# (a `<` that starts no tag is text).
_TOKEN = re.compile(r"<(?P<closing>/?)(?P<name>[a-zA-Z][a-zA-Z0-9]*)?[^<>]*>|(?P<text>[^<]+|<)")
_TAG = re.compile(r"<(?P<closing>/?)(?P<name>[a-zA-Z][a-zA-Z0-9]*)[^<>]*>")
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
_UNSEEN = frozenset({"head", "script", "style", "title", "template"})
_PARAGRAPHS = frozenset({"p", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})
_BREAKS = _PARAGRAPHS | {"br", "div", "td", "th", "li", "ul", "ol"}


def finish_email(html: str) -> tuple[str, str]:
    """The HTML with its CSS inlined, and the plain-text part: `text_from_html` of the HTML as given."""
    html = _without_surrogates(html)
    return _inlined(html), text_from_html(html)


def inline_css(html: str) -> str:
    """The HTML with its CSS inlined (`finish_email` without the text part)."""
    return _inlined(_without_surrogates(html))


def tidy_text(text: str) -> str:
    """A text part made some other way, tidied as `text_from_html` tidies its own."""
    return _tidy(_without_surrogates(text))


def text_from_html(html: str) -> str:
    """The words of `html` as a readable plain-text part: paragraphs apart by one blank line, no trailing
    spaces, links as `[words](url)`, hidden (`display: none`) and head content left out. Never raises."""
    html = _without_surrogates(html)
    try:
        text = _inscriptis_text(html)
    except Exception as exc:  # any failure in inscriptis or lxml: the words between the tags will do
        log.warning("the text part fell back to the words between the tags (%s)", type(exc).__name__)
        text = _words_between_tags(html)
    return _tidy(text)


def _inlined(html: str) -> str:
    if _nesting_over(html, MAX_INLINED_DEPTH):
        log.warning("CSS was not inlined: the HTML nests deeper than %d elements", MAX_INLINED_DEPTH)
        return html
    try:
        return _INLINER.inline(html)
    except Exception as exc:  # any failure in css_inline: send the CSS as written
        log.warning("CSS was not inlined (%s)", type(exc).__name__)
        return html


def _inscriptis_text(html: str) -> str:
    """inscriptis's text, from a tree parsed here so that a cut in the parse is seen: libxml2 stops at a
    nesting depth of 256 and drops the rest, and that text must not go missing silently."""
    html = _XML_DECLARATION.sub("", html, count=1)  # lxml refuses a str that declares an encoding
    if not html.strip():
        return ""
    parser = lxml.html.HTMLParser()  # one per call: an lxml parser is not shared between threads
    try:
        tree = lxml.html.document_fromstring(html, parser=parser)
    except lxml.etree.ParserError:  # "Document is empty": no element at all, only comments or a doctype
        return _words_between_tags(html)
    if any(entry.type_name == "ERR_RESOURCE_LIMIT" for entry in parser.error_log):
        raise _ParseCut("the HTML parser stopped early (nesting too deep)")
    # What shows nothing, or only its words, need not cost inscriptis a visit (a sixth of its time):
    lxml.etree.strip_elements(tree, *_SHOWS_NOTHING, with_tail=False)
    lxml.etree.strip_tags(tree, *_SHOWS_ITS_WORDS, lxml.etree.Comment)
    text: str = Inscriptis(tree, _TEXT_CONFIG).get_text()
    return text


class _ParseCut(Exception):
    pass


def _words_between_tags(html: str) -> str:
    """The text outside tags, with a line break at block tags, and the head, scripts and styles left
    out. One linear pass that keeps no nesting, so no input can make it slow or deep."""
    out: list[str] = []
    unseen: str | None = None  # the tag whose content is being skipped
    for token in _TOKEN.finditer(html):
        if token.group("text") is not None:
            if unseen is None:
                out.append(html_entities.unescape(token.group("text")))
            continue
        name = (token.group("name") or "").lower()
        closing = bool(token.group("closing"))
        if unseen is not None:
            if closing and name == unseen:
                unseen = None
        elif not closing and name in _UNSEEN:
            unseen = name
        elif name in _BREAKS:
            out.append("\n\n" if name in _PARAGRAPHS else "\n")
    return "".join(out)


def _nesting_over(html: str, limit: int) -> bool:
    """Whether the elements in `html` may nest deeper than `limit`, counted without recursion: a start
    tag opens, an end tag closes up to the element it names (or nothing, if none is open). Implied ends
    (`<p>` after `<p>`) are not modelled, so the count errs high: a false alarm sends the CSS as written,
    while modelling them the way a browser does (`<p><table><td><p>` keeps the first `<p>` open) is
    what would let deep input through."""
    if html.count("<") <= limit:
        return False
    open_names: list[str] = []
    open_counts: Counter[str] = Counter()
    for tag in _TAG.finditer(html):
        name = tag.group("name").lower()
        if not tag.group("closing"):
            if name not in _VOID:
                open_names.append(name)
                open_counts[name] += 1
                if len(open_names) > limit:
                    return True
        elif open_counts[name]:
            while (closed := open_names.pop()) != name:
                open_counts[closed] -= 1
            open_counts[name] -= 1
    return False


def _tidy(text: str) -> str:
    """One blank line at most between paragraphs, no trailing spaces, no empty links, no control
    characters; a final newline when there are any words."""
    text = _EMPTY_LINK.sub("", _CONTROL.sub("", text))
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")
    return text + "\n" if text.strip() else ""


def _without_surrogates(text: str) -> str:
    """Lone surrogates (which no encoder accepts) as U+FFFD. Encoding is the cheap test: a regex pass
    over every email cost more than the rare replacement."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text
