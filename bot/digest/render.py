"""Render a Digest to text, markdown, HTML email or JSON with Jinja2 templates.

Templates come from ``BRIEFING_TEMPLATES_DIR`` first (a user's overrides, any subset of
the files), then from the built-in ``templates/``. Every template runs in Jinja2's
sandbox; HTML templates are autoescaped, so state text can never become markup.
"""

from __future__ import annotations

import json
import re
import traceback
from functools import partial
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
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
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~])")


def builtin_templates_dir() -> Path:
    """The shipped templates: ``templates/`` in a checkout, ``bot/_templates`` when installed."""
    checkout = Path(__file__).resolve().parents[2] / "templates"
    return checkout if checkout.is_dir() else Path(__file__).resolve().parents[1] / "_templates"


def escape_markdown(value: object) -> str:
    """Escape characters that markdown would read as formatting or links."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))


def escape_chat(value: object) -> str:
    """Markdown escaping for chat, with ``@`` mentions (``@channel``…) made inert."""
    return escape_markdown(value).replace("@", "@\u200b")


def escape_slack(value: object) -> str:
    """Slack mrkdwn: ``&``, ``<`` and ``>`` are the characters that make links and mentions."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_DIALECTS: dict[str, dict[str, Any]] = {
    "chat": {
        "esc": escape_chat,
        "b": lambda s: f"**{s}**",
        "i": lambda s: f"_{s}_",
        "link": lambda url, title: (
            f"[{escape_chat(title)}]({url})" if _safe_url(url) else escape_chat(title)
        ),
    },
    "teams": {  # Adaptive Card text: a markdown subset with no escapes, and no HTML
        "esc": str,
        "b": lambda s: f"**{s}**",
        "i": lambda s: f"_{s}_",
        "link": lambda url, title: f"[{title}]({url})" if _safe_url(url) else str(title),
    },
    "slack": {
        "esc": escape_slack,
        "b": lambda s: f"*{s}*",
        "i": lambda s: f"_{s}_",
        "link": lambda url, title: (
            f"<{escape_slack(url)}|{escape_slack(title)}>"
            if _safe_url(url)
            else escape_slack(title)
        ),
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
        self._env = SandboxedEnvironment(
            loader=FileSystemLoader(search),
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
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
    """Only http(s) links reach a template's href; anything else becomes empty."""
    return url if url and re.match(r"^https?://", url) else ""
