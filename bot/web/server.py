"""Serving the application with uvicorn's HTTP protocol in the running event loop (the one
``briefing run``'s scheduler and workers use: no second loop, no thread)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from uvicorn import Config
from uvicorn.server import ServerState

from bot.web.app import BriefingApp
from bot.web.hardening import protocol_for

log = logging.getLogger("briefing.web")
GRACE = 5.0
"""Seconds the requests in flight have to finish when the server stops."""


@dataclass
class HttpServer:
    """A listening server: its address, and ``close()`` to stop it."""

    host: str
    port: int
    _server: asyncio.base_events.Server
    _state: ServerState

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Stop listening, let the requests in flight finish (``GRACE`` seconds), close."""
        self._server.close()
        for connection in list(self._state.connections):
            connection.shutdown()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(GRACE):
                # uvicorn's ServerState has no event to wait on; it polls too
                while self._state.connections or self._state.tasks:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        for task in list(self._state.tasks):
            task.cancel()
        for connection in list(self._state.connections):
            if connection.transport is not None:
                connection.transport.close()
        await self._server.wait_closed()


async def start_http(app: BriefingApp, *, host: str, port: int) -> HttpServer:
    """Serve ``app`` on ``host:port`` (0: a free port) under the app's ``ServerLimits``;
    raise ``OSError`` if the address cannot be bound."""
    # uvicorn's own warnings repeat the one line the protocol logs for a refused request
    logging.getLogger("uvicorn.error").setLevel(logging.ERROR)
    protocol = protocol_for(app.web.limits)
    config = Config(
        app, http=protocol, lifespan="off", log_config=None, access_log=False,
        server_header=False, proxy_headers=False,  # X-Forwarded-For: BRIEFING_TRUSTED_PROXIES
    )  # fmt: skip
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol(config=config, server_state=state, app_state={}, _loop=loop),
        host=host,
        port=port,
    )
    bound = server.sockets[0].getsockname()[1] if server.sockets else port
    log.info("HTTP on http://%s:%d", host, bound)
    return HttpServer(host, bound, server, state)
