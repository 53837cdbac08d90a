"""What every route can reach: the database, the clock, the renderer, the settings and the
running bot's parts, as one ``WebContext`` on the application, given to a route by the
``Web`` dependency (``def route(web: Web) -> …``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

if TYPE_CHECKING:
    from bot.web.metrics import Metrics

from bot.digest import DigestRenderer
from bot.settings import Settings
from bot.store.database import Database
from bot.web.hardening import ServerLimits

Clock = Callable[[], datetime]


@dataclass
class Heartbeat:
    """When the scheduler started and last ticked (None: not yet), for ``/healthz`` and
    ``/metrics``."""

    started: datetime
    last: datetime | None = None

    def beat(self, now: datetime) -> None:
        self.last = now

    @property
    def last_or_start(self) -> datetime:
        return self.last or self.started


@dataclass
class WebContext:
    """The application's shared dependencies.

    ``wake`` tells the worker that rows were queued (``briefing run`` gives the worker's;
    without a worker in this process, queued rows wait for one). ``heartbeat`` is the
    scheduler's, None when no scheduler runs here (``/healthz`` then checks only the
    database).
    """

    db: Database
    settings: Settings
    clock: Clock
    renderer: DigestRenderer
    limits: ServerLimits = field(default_factory=ServerLimits)
    heartbeat: Heartbeat | None = None
    wake: Callable[[], None] = lambda: None
    metrics: Metrics = field(default_factory=lambda: _metrics())


def _metrics() -> Metrics:
    from bot.web.metrics import Metrics

    return Metrics()


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.web
    return context


Web = Annotated[WebContext, Depends(web_context)]
