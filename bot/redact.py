"""Keep secrets out of logs, errors and listings: token-bearing URLs, secrets and passwords.

A webhook URL may carry its token anywhere after the host (the only path segment, the
first, the last, a query value) and in its user information, so a masked URL keeps only
what tells targets apart: scheme, host, port and at most the last 4 characters of the
path and query, never a whole segment or value. A URL of another scheme than http(s) (an
Apprise URL) may hold a token where the host would be (``pover://user@TOKEN``,
``tgram://BOTTOKEN/chat``), so its host is treated like its path. Nothing here raises,
whatever the input.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from urllib.parse import unquote

SHOWN_TAIL = 4
SCRUBBED_PIECE = 8  # pieces of a URL at least this long are hidden from free text
_PIECE_BREAKS = re.compile(r"[/?&=;#]")
_PORT = re.compile(r"\d{1,5}")
_UNPRINTABLE = re.compile(r"[\x00-\x20\x7f]")
HOST_SCHEMES = ("http", "https", "")  # schemes whose authority names a host, not a token


def mask_secret(secret: str) -> str:
    """``whsec_abc…xyz`` → ``whsec_…xyz``: enough to tell two apart, not to use one."""
    prefix = "whsec_" if secret.startswith("whsec_") else ""
    return f"{prefix}…{secret[-4:]}" if len(secret) > len(prefix) + 8 else f"{prefix}…"


def _split(url: str) -> tuple[str, str, str]:
    """(scheme, authority, path-and-query) of ``url``, without parsing it strictly (a URL
    too broken for ``urlsplit`` is masked all the same); the fragment is dropped."""
    scheme, separator, rest = url.strip().partition("://")
    if not separator:
        scheme, rest = "", url.strip()
    cut = len(rest)
    for mark in "/?#\\":
        found = rest.find(mark)
        if found != -1:
            cut = min(cut, found)
    return scheme, rest[:cut], rest[cut:].partition("#")[0]


def _host_port(authority: str) -> tuple[str, str]:
    """The host and the port of an authority, its user information left out; a port that
    is not a number is not shown (it may be anything)."""
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, after = hostport.partition("]")
        host += "]" if after or hostport.endswith("]") else ""
        port = after[1:] if after.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    port = port if _PORT.fullmatch(port) else ("…" if port else "")
    return _UNPRINTABLE.sub("", host)[:255], port


def host_of(url: str) -> str:
    """The host of ``url`` as shown (no user information, no port): ``hooks.slack.com``."""
    return _host_port(_split(url)[1])[0]


def _tail(path_and_query: str) -> str:
    """``/…`` and at most the last 4 characters of the last piece of the path and query,
    fewer when that piece is short (never more than half of it)."""
    if path_and_query in ("", "/"):
        return path_and_query
    last = _PIECE_BREAKS.split(path_and_query)[-1]
    shown = min(SHOWN_TAIL, len(last) // 2)
    return "/…" + _UNPRINTABLE.sub("", last[len(last) - shown :]) if shown else "/…"


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/SECRET`` → ``https://hooks.slack.com/…CRET``:
    scheme, host and port, then at most the last 4 characters of the path and query."""
    scheme, authority, rest = _split(url)
    host, port = _host_port(authority)
    shown = _UNPRINTABLE.sub("", scheme)[:20] + "://" if scheme else ""
    if scheme.lower() not in HOST_SCHEMES:  # tgram://BOTTOKEN/… → tgram://…01
        return shown + _tail("/" + authority.rpartition("@")[2] + rest)[1:]
    return f"{shown}{host}{':' + port if port else ''}{_tail(rest)}"


def is_email(address: str) -> bool:
    """Whether ``address`` is an email target (shown as it is) rather than a URL."""
    text = address.strip()
    if text[:7].lower() == "mailto:" and text[7:9] != "//":
        text = text[7:]
    return "@" in text and not re.search(r"[/:?#\\]", text)


def mask_target(address: str) -> str:
    """Mask a webhook URL; email addresses are shown as they are (they are the target)."""
    return address if is_email(address) else mask_url(address)


def default_name(kind: str, address: str) -> str:
    """A subscription's name when none is given, free of any token: ``slack webhook on
    hooks.slack.com``; an email address is its own name."""
    if kind == "email" or is_email(address):
        return address
    scheme = _split(address)[0]
    if scheme.lower() not in HOST_SCHEMES:  # its "host" may be a token
        return f"{kind} target ({_UNPRINTABLE.sub('', scheme)[:20]}://)"
    return f"{kind} webhook on {host_of(address) or 'an unnamed host'}"


@functools.lru_cache(maxsize=4096)
def _pieces(url: str) -> tuple[str, ...]:
    """Everything in ``url`` but its scheme and host (user information, port, path, query,
    fragment; the host too for another scheme than http(s)), whole and in pieces, as
    written and percent-decoded: what a token may be."""
    scheme, authority, rest = _split(url)
    userinfo, _, hostport = authority.rpartition("@")
    port = hostport.rpartition("]")[2].partition(":")[2]
    fragment = url.partition("#")[2]
    whole = {url.strip(), userinfo, port, rest, fragment}
    if scheme.lower() not in HOST_SCHEMES:
        whole.add(hostport)
    whole |= {unquote(text) for text in whole}
    found = set(whole)
    for text in whole:
        found.update(re.split(r"[/?&=;#:@\\]", text))
    return tuple(sorted((p for p in found if len(p) >= SCRUBBED_PIECE), key=len, reverse=True))


def scrub(text: str, url: str, secrets: Sequence[str] = ()) -> str:
    """``text`` (an error, a receiver's answer, a traceback) with ``url`` masked wherever
    it appears, every piece of ``url`` that could be a token (8 characters or more)
    replaced by ``…``, and ``secrets`` masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, mask_secret(secret))
    if is_email(url) or not text:
        return text
    text = text.replace(url.strip(), mask_url(url)) if url.strip() else text
    for piece in _pieces(url):  # longest first
        text = text.replace(piece, "…")
    return text
