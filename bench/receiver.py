"""A local webhook receiver for benchmarks: answers 200 after a fixed delay, counts requests.

    python bench/receiver.py PORT DELAY_SECONDS
GET /count returns how many POSTs it has answered.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

count = 0


async def hook(request: web.Request) -> web.Response:
    global count
    await request.read()
    await asyncio.sleep(DELAY)
    count += 1
    return web.Response(text="ok")


async def counter(request: web.Request) -> web.Response:
    return web.Response(text=str(count))


if __name__ == "__main__":
    PORT, DELAY = int(sys.argv[1]), float(sys.argv[2])
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", hook)
    app.router.add_get("/count", counter)
    web.run_app(app, host="127.0.0.1", port=PORT, print=None, access_log=None, backlog=4096)
