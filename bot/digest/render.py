"""Render a Digest to text, markdown, HTML email or JSON with Jinja2 templates.

Templates come from ``BRIEFING_TEMPLATES_DIR`` first (a user's overrides, any subset of
the files), then from the built-in ``templates/``. Every template runs in Jinja2's
sandbox; HTML templates, and what they import, are autoescaped, and every chat dialect
escapes state text its own way, so state text never becomes markup, a link or a mention.

Email adds ``EMAIL_PARTS``: its subject and List-Id (one line each), and its footers. A
footer is the same for every reader of a message but for a few values (the reader's
address, unsubscribe link, subscription date); it is rendered once per message and case
with ``slot``s in their place, which the email output fills for each reader
(``fill_slots``).
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from bot.digest import formatting
from bot.digest.model import Digest
from bot.errors import ConfigError

FORMATS: dict[str, str] = {
    "text": "digest.txt.j2",
    "markdown": "digest.md.j2",
    "html": "digest.html.j2",
    "chat": "digest.chat.j2",
    "slack": "digest.chat.j2",
    "teams": "digest.chat.j2",
    "chat_html": "digest.chat.j2",
    "googlechat": "digest.chat.j2",
    "zulip": "digest.chat.j2",
}
CHUNK_BREAK = "\x1e"
JSON_FORMAT = "json"
_HTML_IMPORT = "@html"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~])")
# Block markup that only counts at the start of a line: headings, lists, setext underlines.
_MARKDOWN_LINE_MARK = re.compile(r"^([ \t]*)([-+=#])", re.MULTILINE)
_MARKDOWN_LINE_NUMBER = re.compile(r"^([ \t]*\d{1,9})([.)])", re.MULTILINE)
_ZERO_WIDTH = "\u200b"
# Look-alikes for the emphasis and code characters of dialects that have no escapes.
_LOOKALIKES = str.maketrans({"*": "\u2217", "_": "\uff3f", "~": "\u223c", "`": "\u02cb"})
_FULLWIDTH_BRACKETS = str.maketrans({"[": "\uff3b", "]": "\uff3d"})
# `](` `]:` `][` make links, `<` autolinks, HTML and <at> mentions, `{{` card functions.
_TEAMS_BREAK_AFTER = re.compile(r"([\]<{@])")
_TEAMS_LINE_START = re.compile(r"^(?=[ \t]*(?:[-+=#>|]|\d{1,9}[.)]))", re.MULTILINE)
_URL_UNSAFE = re.compile(r"[\s<>()\[\]{}\"'`|\\]")


def slot(name: str) -> Markup:
    """Where a per-reader value goes in a rendered email part (left as is by autoescape)."""
    return Markup("\x1a{}\x1a").format(name)


def drop_slot_lines(text: str, name: str) -> str:
    """``text`` without the lines that hold ``slot(name)`` (a link the reader cannot use)."""
    mark = slot(name)
    return "".join(line for line in text.splitlines(keepends=True) if mark not in line)


def fill_slots(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``slot(name)`` replaced by ``values[name]`` (escape them first
    for HTML)."""
    for name, value in values.items():
        text = text.replace(slot(name), value)
    return text


HEADER_PARTS: dict[str, str] = {
    "email_subject": "email.subject.j2",
    "email_list_id": "email.list_id.j2",
}
"""Email headers from templates: one line each (a line break is refused)."""
FOOTER_TEMPLATES: dict[str, str] = {"text": "email.footer.txt.j2", "html": "email.footer.html.j2"}
_READER = {
    "address": slot("address"),
    "unsubscribe_url": slot("unsubscribe_url"),
    "preferences_url": slot("preferences_url"),
}
FOOTER_CASES: dict[str, dict[str, object]] = {
    "subscriber": {**_READER, "one_off": False, "subscribed_on": slot("subscribed_on")},
    "subscriber_undated": {**_READER, "one_off": False, "subscribed_on": None},
    "one_off": {"address": slot("address"), "unsubscribe_url": None, "preferences_url": None,
                "one_off": True, "subscribed_on": None},
}  # fmt: skip
"""Who a footer is for: a subscriber (whose subscription date may be unknown) or the
receiver of a one-off message, who has no subscription and no unsubscribe link."""


def footer_part(fmt: str, case: str) -> str:
    """The name of the footer for ``fmt`` (text, html) and ``case`` (``FOOTER_CASES``)."""
    return f"email_footer_{fmt}_{case}"


EMAIL_PARTS: dict[str, tuple[str, Mapping[str, object]]] = {
    "email_subject": (HEADER_PARTS["email_subject"], {}),
    "email_list_id": (HEADER_PARTS["email_list_id"], {"domain": slot("domain")}),
    **{
        footer_part(fmt, case): (template, values)
        for fmt, template in FOOTER_TEMPLATES.items()
        for case, values in FOOTER_CASES.items()
    },
}
"""What an email needs besides its bodies, by name: (template, its extra values)."""


def builtin_templates_dir() -> Path:
    """The shipped templates: the checkout's ``templates/`` when the package runs from a
    checkout (an editable install), else their copy in the wheel (``bot/_templates``); a
    ``templates`` folder that happens to sit next to an installed package is not used."""
    from bot.settings import PACKAGE, checkout

    root = checkout()
    return root / "templates" if root is not None else PACKAGE / "_templates"


def escape_markdown(value: object) -> str:
    """Escape characters that markdown would read as formatting or links, and the marks
    that make a heading or a list at the start of a line."""
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))
    text = _MARKDOWN_LINE_MARK.sub(r"\1\\\2", text)
    return _MARKDOWN_LINE_NUMBER.sub(r"\1\\\2", text)


def escape_chat(value: object) -> str:
    """Markdown escaping for chat, with ``@`` mentions (``@channel``…) made inert."""
    return escape_markdown(value).replace("@", "@\u200b")


def _slack_entities(value: object) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_slack(value: object) -> str:
    """Slack mrkdwn: ``&``, ``<`` and ``>`` (links and mentions) become entities; ``*``,
    ``_``, ``~`` and backticks, which mrkdwn cannot escape, become look-alikes; ``@``
    mentions are made inert as for the other chat dialects."""
    return _slack_entities(value).translate(_LOOKALIKES).replace("@", "@" + _ZERO_WIDTH)


def escape_teams(value: object) -> str:
    """Adaptive Card text: a markdown subset with no escapes and no HTML.

    Emphasis and code characters become look-alikes; an invisible zero-width space after
    ``]``, ``<``, ``{`` and ``@`` breaks links (``](``), autolinks, ``<at>`` mentions and
    ``{{DATE()}}`` functions; one at the start of a line stops a list, heading or quote.
    """
    text = str(value).translate(_LOOKALIKES)
    text = _TEAMS_BREAK_AFTER.sub(r"\1" + _ZERO_WIDTH, text)
    return _TEAMS_LINE_START.sub(_ZERO_WIDTH, text)


def _chat_link(url: str | None, title: object) -> str:
    href = _safe_url(url)
    return f"[{escape_chat(title)}]({href})" if href else escape_chat(title)


def _teams_link(url: str | None, title: object) -> str:
    href = _safe_url(url)
    text = escape_teams(str(title).translate(_FULLWIDTH_BRACKETS))
    return f"[{text}]({href})" if href else text


def _slack_link(url: str | None, title: object) -> str:
    href = _safe_url(url)
    return f"<{_slack_entities(href)}|{escape_slack(title)}>" if href else escape_slack(title)


_HTML_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# Google Chat text has no escapes: its markup characters and <link|text> brackets become
# look-alikes.
_GOOGLE_CHAT_LOOKALIKES = str.maketrans(
    {"*": "\u2217", "_": "\uff3f", "~": "\u223c", "`": "\u02cb", "<": "\uff1c", ">": "\uff1e"}
)
_ZULIP_SPECIAL = re.compile(r"([\\`*_\[\]])")
# After these a zero-width space: raw HTML and <time:…>, ~~strike~~, $$math$$, @mentions.
_ZULIP_BREAK_AFTER = re.compile(r"([<~$@])")


def escape_chat_html(value: object) -> str:
    """Chat HTML (Telegram's tag subset, Matrix's ``formatted_body``): ``&``, ``<`` and ``>``
    become entities; ``@`` mentions are made inert as for the other chat dialects."""
    return str(value).translate(_HTML_TEXT).replace("@", "@" + _ZERO_WIDTH)


def escape_google_chat(value: object) -> str:
    """Google Chat text: emphasis, code and angle-bracket characters (links, ``<users/all>``
    mentions) become look-alikes; ``@`` and list marks at a line's start are made inert."""
    text = str(value).translate(_GOOGLE_CHAT_LOOKALIKES).replace("@", "@" + _ZERO_WIDTH)
    return _TEAMS_LINE_START.sub(_ZERO_WIDTH, text)


def escape_zulip(value: object) -> str:
    """Zulip markdown: backslash escapes for what they cover (emphasis, code, links), a
    zero-width space after ``<``, ``~``, ``$`` and ``@`` and before block marks at a line's
    start, which Zulip's markdown cannot escape."""
    text = _ZULIP_SPECIAL.sub(r"\\\1", str(value))
    text = _ZULIP_BREAK_AFTER.sub(r"\1" + _ZERO_WIDTH, text)
    return _TEAMS_LINE_START.sub(_ZERO_WIDTH, text)


def _chat_html_link(url: str | None, title: object) -> str:
    href = _safe_url(url)
    text = escape_chat_html(title)
    return f'<a href="{str(href).translate(_HTML_TEXT)}">{text}</a>' if href else text


def _google_chat_link(url: str | None, title: object) -> str:
    href = _safe_url(url)
    return f"<{href}|{escape_google_chat(title)}>" if href else escape_google_chat(title)


def _zulip_link(url: str | None, title: object) -> str:
    href = _safe_url(url)
    return f"[{escape_zulip(title)}]({href})" if href else escape_zulip(title)


_DIALECTS: dict[str, dict[str, Any]] = {
    "chat": {
        "esc": escape_chat,
        "b": lambda s: f"**{s}**",
        "i": lambda s: f"_{s}_",
        "link": _chat_link,
    },
    "teams": {
        "esc": escape_teams,
        "b": lambda s: f"**{s}**",
        "i": lambda s: f"_{s}_",
        "link": _teams_link,
    },
    "slack": {
        "esc": escape_slack,
        "b": lambda s: f"*{s}*",
        "i": lambda s: f"_{s}_",
        "link": _slack_link,
    },
    "chat_html": {
        "esc": escape_chat_html,
        "b": lambda s: f"<b>{s}</b>",
        "i": lambda s: f"<i>{s}</i>",
        "link": _chat_html_link,
    },
    "googlechat": {
        "esc": escape_google_chat,
        "b": lambda s: f"*{s}*",
        "i": lambda s: f"_{s}_",
        "link": _google_chat_link,
    },
    "zulip": {
        "esc": escape_zulip,
        "b": lambda s: f"**{s}**",
        "i": lambda s: f"*{s}*",
        "link": _zulip_link,
    },
}


def upfirst(value: object) -> str:
    """Capitalise the first letter only (``the Kremlin`` → ``The Kremlin``)."""
    text = str(value)
    return text[:1].upper() + text[1:]


class DigestRenderer:
    """Turns Digests into text in one of ``FORMATS`` (or JSON); reusable and thread-safe."""

    def __init__(self, *, templates_dir: Path | None = None) -> None:
        search = [builtin_templates_dir()]
        if templates_dir is not None:
            if not templates_dir.is_dir():
                raise ConfigError(f"BRIEFING_TEMPLATES_DIR {templates_dir} is not a directory")
            search.insert(0, templates_dir)
        self._env = _TemplateEnvironment(
            loader=_TemplateLoader(search),
            autoescape=_is_html,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            finalize=_typography,
        )
        self._env.filters["md"] = escape_markdown
        self._env.filters["upfirst"] = upfirst

    def render(self, digest: Digest, fmt: str) -> str:
        """Render ``digest`` as ``fmt`` (one of ``FORMATS``, json, or an email part of
        ``EMAIL_PARTS``); raise ``ConfigError`` for an unknown format, a broken template or
        an email header template that renders a line break."""
        if fmt == JSON_FORMAT:
            return json.dumps(digest.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"
        if fmt in EMAIL_PARTS:
            name, values = EMAIL_PARTS[fmt]
            text = self._render(name, digest, values)
            return _one_line(text, name) if name in HEADER_PARTS.values() else text
        if fmt not in FORMATS:
            known = ", ".join([*FORMATS, JSON_FORMAT])
            raise ConfigError(f"unknown format {fmt!r} (known: {known})")
        return self._render(FORMATS[fmt], digest, _DIALECTS.get(fmt, {}))

    def _render(self, name: str, digest: Digest, values: Mapping[str, object]) -> str:
        try:
            template = self._env.get_template(name)
            return template.render(d=digest, BREAK=CHUNK_BREAK, **self._helpers(digest), **values)
        except Exception as exc:  # a template may fail in any way while it renders
            where, line = _template_frame(exc, name)
            problem = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
            raise ConfigError(f"template {where}{f':{line}' if line else ''}: {problem}") from exc

    def page(self, name: str, **values: object) -> str:
        """Render another template of the same set (HTML pages are autoescaped too)."""
        return self._env.get_template(name).render(**values)

    @staticmethod
    def _helpers(digest: Digest) -> dict[str, Any]:
        locale, zone = digest.locale, digest.timezone
        sources = {s.id: s for s in digest.sources}
        return {
            "source": lambda src: formatting.source_text(src, locale),
            "cite": lambda sid: (
                formatting.short_source(sources[sid], locale) if sid in sources else sid
            ),
            "figure_label": partial(formatting.figure_label, locale=locale, reader_zone=zone),
            "day": partial(formatting.day_in, locale=locale, zone=zone),
            "t": partial(formatting.label, locale=locale),
            "standing": partial(formatting.standing_label, locale=locale),
            "when": partial(formatting.when_text, locale=locale, reader_zone=zone),
            "figure": partial(formatting.figure_text, locale=locale),
            "long_date": partial(formatting.long_date, locale=locale),
            "full_date": partial(formatting.full_date, locale=locale),
            "moment": partial(formatting.moment, locale=locale, zone=zone),
            "safe_url": _safe_url,
        }


@pass_context
def _typography(context: Context, value: object) -> object:
    """What every ``{{ … }}`` of a French digest prints goes through French typography
    (narrow no-break spaces before ``; : ! ?`` and inside « »), state text included."""
    digest = context.get("d")
    if not isinstance(digest, Digest) or digest.locale != "fr":
        return value
    if isinstance(value, Markup):
        return Markup(formatting.french_typography(str(value)))  # noqa: S704 (already escaped; only spaces change)
    if isinstance(value, str):
        return formatting.french_typography(value)
    return value


def _one_line(text: str, name: str) -> str:
    """A header's value: ``text`` without surrounding white space; ``ConfigError`` if a line
    break is left (it would end the header and start another)."""
    text = text.strip()
    if len(text.splitlines()) > 1:
        raise ConfigError(
            f"template {name} renders a line break ({text[:200]!r}); an email header is one line"
        )
    return text


def _template_frame(exc: BaseException, name: str) -> tuple[str, int | None]:
    """The template file and line where rendering failed (Jinja puts template lines in the
    traceback), or the template's name when the error does not say."""
    if isinstance(exc, TemplateSyntaxError) and exc.lineno:
        return exc.filename or name, exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    if frames:
        return frames[-1].filename, frames[-1].lineno
    return name, None


def _safe_url(url: str | None) -> str | Markup:
    """Only http(s) links reach a template's href; anything else becomes empty. Characters
    that could end a link in markdown or mrkdwn (brackets, quotes, ``|``…) are
    percent-encoded, which leaves the address the same."""
    if not url or not re.match(r"^https?://", url):
        return ""
    return _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), url)


def _is_html(name: str | None) -> bool:
    return bool(name and name.endswith((".html.j2", _HTML_IMPORT)))


class _TemplateEnvironment(SandboxedEnvironment):
    """The sandbox, where a template imported or included by an HTML template is compiled
    autoescaped as well.

    Jinja decides escaping per template file, and marks what a macro returns as safe when
    its caller escapes: a macro from a plain file (``_macros.j2``) would otherwise hand
    state text to HTML unescaped. Such imports load under the name ``NAME@html``.
    """

    def join_path(self, template: str, parent: str) -> str:
        if _is_html(parent) and not _is_html(template):
            return template + _HTML_IMPORT
        return template


class _TemplateLoader(FileSystemLoader):
    """Finds ``NAME@html`` as ``NAME`` (the HTML-escaped compilation of a shared file)."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        return super().get_source(environment, template.removesuffix(_HTML_IMPORT))
