"""The operations every front door shares (the CLI, the HTTP API, the admin page): make,
change and list subscriptions, queue and send digests, preview them, read the delivery
log. Each is a plain function of the database, the settings and the values given; each
raises ``ConfigError`` (``NotFound`` for an unknown id) naming the value at fault."""

from bot.operations.common import NotFound, current_state

__all__ = ["NotFound", "current_state"]
