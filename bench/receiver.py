"""A local webhook receiver for benchmarks: answers 200 after a fixed delay, counts requests.

    python bench/receiver.py PORT DELAY_SECONDS
GET /count returns how many POSTs it has answered; GET /last the time (Unix seconds) at which
it answered the latest one; GET /repeats how many POSTs carried a ``webhook-id`` it had
already answered.
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiohttp import web

count = 0
last = 0.0
seen: set[str] = set()
repeats = 0


async def hook(request: web.Request) -> web.Response:
    global count, last, repeats
    await request.read()
    await asyncio.sleep(DELAY)
    count += 1
    last = time.time()
    if (key := request.headers.get("webhook-id")) is not None:
        repeats += key in seen
        seen.add(key)
    return web.Response(text="ok")


async def counter(request: web.Request) -> web.Response:
    return web.Response(text=str(count))


async def latest(request: web.Request) -> web.Response:
    return web.Response(text=repr(last))


async def repeated(request: web.Request) -> web.Response:
    return web.Response(text=str(repeats))


if __name__ == "__main__":
    PORT, DELAY = int(sys.argv[1]), float(sys.argv[2])
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", hook)
    app.router.add_get("/count", counter)
    app.router.add_get("/last", latest)
    app.router.add_get("/repeats", repeated)
    web.run_app(app, host="127.0.0.1", port=PORT, print=None, access_log=None, backlog=4096)
