"""Render a Digest to text, markdown, HTML email or JSON with Jinja2 templates.

Templates come from ``BRIEFING_TEMPLATES_DIR`` first (a user's overrides, any subset of
the files), then from the built-in ``templates/``. Every template runs in Jinja2's
sandbox; HTML templates, and what they import, are autoescaped, and every chat dialect
escapes state text its own way, so state text never becomes markup, a link or a mention.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
)
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


def builtin_templates_dir() -> Path:
    """The shipped templates: ``templates/`` in a checkout, ``bot/_templates`` when installed."""
    checkout = Path(__file__).resolve().parents[2] / "templates"
    return checkout if checkout.is_dir() else Path(__file__).resolve().parents[1] / "_templates"


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
        )
        self._env.filters["md"] = escape_markdown
        self._env.filters["upfirst"] = upfirst

    def render(self, digest: Digest, fmt: str) -> str:
        """Render ``digest`` as ``fmt``; raise ``ConfigError`` for an unknown format or a
        broken template."""
        if fmt == JSON_FORMAT:
            return json.dumps(digest.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"
        if fmt not in FORMATS:
            known = ", ".join([*FORMATS, JSON_FORMAT])
            raise ConfigError(f"unknown format {fmt!r} (known: {known})")
        try:
            template = self._env.get_template(FORMATS[fmt])
            return template.render(
                d=digest, BREAK=CHUNK_BREAK, **self._helpers(digest), **_DIALECTS.get(fmt, {})
            )
        except Exception as exc:  # a template may fail in any way while it renders
            where, line = _template_frame(exc, FORMATS[fmt])
            problem = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
            raise ConfigError(f"template {where}{f':{line}' if line else ''}: {problem}") from exc

    def page(self, name: str, **values: object) -> str:
        """Render another template of the same set (HTML pages are autoescaped too)."""
        return self._env.get_template(name).render(**values)

    @staticmethod
    def _helpers(digest: Digest) -> dict[str, Any]:
        locale, zone = digest.locale, digest.timezone
        return {
            "t": partial(formatting.label, locale=locale),
            "standing": partial(formatting.standing_label, locale=locale),
            "when": partial(formatting.when_text, locale=locale, reader_zone=zone),
            "figure": partial(formatting.figure_text, locale=locale),
            "long_date": partial(formatting.long_date, locale=locale),
            "full_date": partial(formatting.full_date, locale=locale),
            "moment": partial(formatting.moment, locale=locale, zone=zone),
            "safe_url": _safe_url,
        }


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
