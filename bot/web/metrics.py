"""``/metrics`` in Prometheus's text format: what the worker sent (by output and outcome,
with the time each send took), the queue (rows by status, the age of the oldest due row),
and the scheduler's last tick. Counters and the histogram are fed by the worker as it
sends; the queue's gauges are read from the database at each scrape. The news feeds' polls
(by feed and outcome) and the entries they took are counted by the feed poller as it polls."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.delivery import Outcome, Status
from bot.feeds.ingest import PollResult
from bot.store import outbox
from bot.web.auth import require_metrics_token
from bot.web.context import Web

log = logging.getLogger("briefing.web")
router = APIRouter(include_in_schema=False)
OUTCOMES = {
    Status.DELIVERED: "delivered",
    Status.PENDING: "retry",
    Status.DEAD: "failed",
    Status.SKIPPED: "skipped",
    Status.SENDING: "retry",
}
SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The bot's metrics, in a registry of their own (one per application)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "briefing_deliveries",
            "Delivery attempts by output and outcome (delivered, retry, failed, skipped).",
            ["output", "outcome"],
            registry=self.registry,
        )
        self.send_seconds = Histogram(
            "briefing_send_duration_seconds",
            "Time one delivery attempt took, by output.",
            ["output"],
            buckets=SEND_BUCKETS,
            registry=self.registry,
        )
        self.queue = Gauge(
            "briefing_queue_rows", "Outbox rows by status.", ["status"], registry=self.registry
        )
        self.oldest_due = Gauge(
            "briefing_queue_oldest_due_age_seconds",
            "How long the longest-waiting due row has waited (0: none is due).",
            registry=self.registry,
        )
        self.last_tick = Gauge(
            "briefing_scheduler_last_tick_timestamp_seconds",
            "When the scheduler last ticked, Unix time (0: not yet, or no scheduler here).",
            registry=self.registry,
        )
        self.feed_polls = Counter(
            "briefing_feed_polls",
            "News feed polls by feed and outcome (ok, not_modified, error).",
            ["feed", "outcome"],
            registry=self.registry,
        )
        self.feed_entries = Counter(
            "briefing_feed_entries",
            "Entries taken from news feeds (filed under a topic), by feed.",
            ["feed"],
            registry=self.registry,
        )

    def sent(self, output: str, outcome: Outcome, seconds: float) -> None:
        """Count one attempt (a ``Worker.on_sent`` listener)."""
        self.deliveries.labels(output=output, outcome=OUTCOMES[outcome.status]).inc()
        self.send_seconds.labels(output=output).observe(seconds)

    def polled(self, result: PollResult) -> None:
        """Count one feed poll and the entries it took (a ``FeedPoller.on_polled``
        listener)."""
        outcome = "error" if result.error else "not_modified" if result.not_modified else "ok"
        self.feed_polls.labels(feed=result.feed, outcome=outcome).inc()
        self.feed_entries.labels(feed=result.feed).inc(len(result.filed))

    async def refresh(self, web: Web) -> None:
        """Read the queue's gauges and the scheduler's tick."""
        now = web.clock()
        counts = await outbox.counts(web.db)
        for status in Status:
            self.queue.labels(status=status.value).set(counts.get(status, 0))
        oldest = await outbox.oldest_due(web.db, now=now)
        self.oldest_due.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        beat = web.heartbeat.last if web.heartbeat else None
        self.last_tick.set(beat.timestamp() if beat else 0.0)


@router.get("/metrics", dependencies=[Depends(require_metrics_token)])
async def metrics(web: Web) -> Response:
    await web.metrics.refresh(web)
    return Response(
        generate_latest(web.metrics.registry),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
