"""Feeds made for the tests: French and English, a duplicate across feeds, an entry that
matches no topic, and every kind of bad feed; served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from tests.receivers import Behaviour, HttpReceiver, hang, reply

ETAG = '"v1"'
LAST_MODIFIED = "Tue, 02 Dec 2025 12:00:00 GMT"

FRENCH_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Le Quotidien</title><language>fr</language>
<item><guid>fr-1</guid><link>https://quotidien.example/pokrovsk?utm_source=rss</link>
<title>Combats de rue à POKROVSK, selon l'état-major</title>
<description>&lt;p&gt;L'armée ukrainienne dit tenir des positions.&lt;/p&gt;</description>
<pubDate>Tue, 02 Dec 2025 09:00:00 GMT</pubDate></item>
<item><guid>fr-2</guid><link>https://quotidien.example/pourparlers</link>
<title>Les pourparlers de Moscou se prolongent</title>
<description>M. Witkoff reste à Moscou.</description>
<pubDate>Tue, 02 Dec 2025 10:00:00 GMT</pubDate></item>
<item><guid>fr-3</guid><link>https://quotidien.example/meteo</link>
<title>Neige attendue sur Paris</title><description>Météo du jour.</description>
<pubDate>Tue, 02 Dec 2025 11:00:00 GMT</pubDate></item>
</channel></rss>
"""

ENGLISH_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Daily Wire Service</title>
<id>urn:wire</id><updated>2025-12-02T12:00:00Z</updated>
<entry><id>urn:wire:1</id><title>US sanctions on Rosneft and Lukoil bite into exports</title>
<link href="https://wire.example/rosneft"/><updated>2025-12-02T08:00:00Z</updated>
<summary>Shipments fell in November.</summary></entry>
<entry><id>urn:wire:2</id><title>Witkoff and Kushner meet Dmitriev before Kremlin talks</title>
<link href="https://wire.example/talks"/><updated>2025-12-02T09:30:00Z</updated>
<summary>The envoys met in Moscow.</summary></entry>
<entry><id>urn:wire:3</id><title>Quarterly results at a chocolate maker</title>
<link href="https://wire.example/chocolate"/><updated>2025-12-02T09:45:00Z</updated>
<summary>Profits rose.</summary></entry>
</feed>
"""

# The same story as the wire's first entry, from another feed (a near-identical title),
# and the wire's second entry again under its own link with tracking parameters.
ENGLISH_JSON = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Other Daily",
        "language": "en",
        "items": [
            {
                "id": "other-1",
                "url": "https://other.example/a",
                "title": "US sanctions on Rosneft and Lukoil bite into exports!",
                "date_published": "2025-12-02T10:00:00Z",
                "content_text": "Shipments fell.",
            },
            {
                "id": "other-2",
                "url": "https://wire.example/talks?utm_medium=social&utm_campaign=x",
                "title": "Envoys gather in Moscow",
                "date_published": "2025-12-02T10:00:00Z",
            },
            {
                "id": "other-3",
                "url": "https://other.example/drones",
                "title": "Overnight drone attack on Vovchansk",
                "date_published": "2025-12-02T11:00:00Z",
                "summary": "Drones hit the town.",
            },
        ],
    }
)

RSS_091 = """<?xml version="1.0"?><rss version="0.91"><channel><title>Old</title>
<item><title>Sanctions widened</title><link>https://old.example/1</link></item>
</channel></rss>"""

RDF_10 = """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<channel rdf:about="https://rdf.example/"><title>RDF</title></channel>
<item rdf:about="https://rdf.example/1"><title>Drones over Pokrovsk</title>
<link>https://rdf.example/1</link></item></rdf:RDF>"""

MALFORMED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</title>
<item><title>Pokrovsk falls</title><guid>b-1</guid></item><item><title>Unclosed</channel></rss>"""
HTML_PAGE = "<!DOCTYPE html><html><head><title>Home</title></head><body>Pokrovsk</body></html>"
WRONG_ENCODING = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Enc</title>'
    "<item><guid>e-1</guid><title>Vovtchansk: l'armée russe déclare la prise</title></item>"
    "</channel></rss>"
).encode("latin-1")


def feed(body: str | bytes, content_type: str = "application/rss+xml") -> Behaviour:
    async def behaviour(request: web.Request) -> web.StreamResponse:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(body=data, headers={"content-type": content_type})

    return behaviour


def conditional(body: str, content_type: str = "application/rss+xml") -> Behaviour:
    """A feed that answers 304 to a request carrying its ETag or Last-Modified date."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        if request.headers.get("if-none-match") == ETAG or (
            request.headers.get("if-modified-since") == LAST_MODIFIED
        ):
            return web.Response(status=304)
        return web.Response(
            body=body.encode(),
            headers={"content-type": content_type, "etag": ETAG, "last-modified": LAST_MODIFIED},
        )

    return behaviour


def huge(size: int) -> Behaviour:
    async def behaviour(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "application/rss+xml"})
        await response.prepare(request)
        chunk = b"<!-- " + b"x" * 65_000 + b" -->"
        sent = 0
        try:
            while sent < size:
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response

    return behaviour


def redirect_to(path: str) -> Behaviour:
    async def behaviour(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"location": path})

    return behaviour


GOOD = {
    "/fr.xml": ("Le Quotidien", "fr", lambda: conditional(FRENCH_RSS)),
    "/en.atom": ("Daily Wire", "en", lambda: feed(ENGLISH_ATOM, "application/atom+xml")),
    "/other.json": ("Other Daily", "en", lambda: feed(ENGLISH_JSON, "application/feed+json")),
}
BAD = {
    "/malformed.xml": lambda: feed(MALFORMED),
    "/page.html": lambda: feed(HTML_PAGE, "text/html"),
    "/huge.xml": lambda: huge(10 * 1024 * 1024),
    "/loop-a": lambda: redirect_to("/loop-b"),
    "/loop-b": lambda: redirect_to("/loop-a"),  # reached from /loop-a
    "/hang.xml": lambda: hang(3),  # longer than the feed's 1 s timeout
    "/missing.xml": lambda: reply(404, "not found"),
    "/broken.xml": lambda: reply(500, "oops"),
    "/encoding.xml": lambda: feed(WRONG_ENCODING),
}
BAD_ERRORS = {
    "/malformed.xml": "malformed XML at line",
    "/page.html": "not a feed: an HTML page",
    "/huge.xml": "larger than 5 MB",
    "/loop-a": "redirect loop",
    "/hang.xml": "1 s",
    "/missing.xml": "HTTP 404",
    "/broken.xml": "HTTP 500",
    "/encoding.xml": "wrong character encoding",
}


def serve_all(receiver: HttpReceiver) -> None:
    for path, (_, _, behaviour) in GOOD.items():
        receiver.on(path, behaviour())
    for path, make in BAD.items():
        receiver.on(path, make())


def feeds_yaml(
    receiver: HttpReceiver,
    path: Path,
    *,
    bad: bool = True,
    publish: str = "review",
    allow_private: bool = True,
    interval: str = "1h",
) -> Path:
    """A feeds.yaml naming the test feeds on ``receiver``."""
    lines = ["feeds:"]
    for feed_path, (name, language, _) in GOOD.items():
        lines += [
            f"  - url: {receiver.base}{feed_path}",
            f"    name: {name}",
            f"    language: {language}",
            f"    publish: {publish}",
            f"    interval: {interval}",
            f"    allow_private: {'true' if allow_private else 'false'}",
        ]
    if bad:
        for feed_path in BAD:
            if feed_path == "/loop-b":
                continue
            lines += [
                f"  - url: {receiver.base}{feed_path}",
                f"    name: bad {feed_path}",
                "    language: en",
                f"    interval: {interval}",
                "    allow_private: true",
                # 1 s to give up on the hanging server; the 10 MB body gets the full 10 s
                f"    timeout: {10 if feed_path == '/huge.xml' else 1}",
            ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
