"""The worker: claims due outbox rows, prepares each message, sends it, records the outcome.

- ``leases``: claiming rows under a lease, renewing it while sending, giving rows back;
- ``prepare``: from a row to what to send (the reader's window, the digest, the rendered
  message, cached for every reader who gets the same one);
- ``record``: outcomes written in batches, and the pause rule;
- ``worker``: the loop that ties them together, with bounded concurrency;
- ``manual``: waiting for the rows of a manual send (``briefing send``).
"""

from bot.worker.manual import send_and_wait
from bot.worker.worker import Worker

__all__ = ["Worker", "send_and_wait"]
