"""The API's request and answer bodies (their JSON Schemas are the OpenAPI document's);
subscriptions and deliveries are shown as the CLI's ``--json`` shows them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.operations.deliveries import DeliveryView
from bot.operations.subscriptions import SubscriptionView

MAX_ID = 2**31 - 1  # ids are INTEGER columns (32 bits on PostgreSQL)
Line = Annotated[str, Field(min_length=1, max_length=2000)]
Short = Annotated[str, Field(min_length=1, max_length=200)]
Locale = Literal["en", "fr"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewSubscription(_Input):
    """A subscription to make; the fields are the CLI's options (``briefing subscribe``)."""

    kind: Short | None = Field(
        default=None, description="An output (`briefing outputs`); default: from the address."
    )
    address: Line = Field(description="The webhook URL, email address or platform target.")
    secret: list[Line] | None = Field(
        default=None,
        description="Signing secrets (whsec_…) or the platform's token; a generic webhook "
        "without one gets a new one, returned once.",
    )
    topics: list[Short] | None = Field(default=None, description="Topics (default: all).")
    locale: Locale | None = Field(default=None, description="fr or en.")
    timezone: Short | None = Field(default=None, description="IANA timezone.")
    at: Short | None = Field(default=None, description="Daily at HH:MM (default 07:00).")
    cron: Short | None = Field(default=None, description="A crontab line instead of `at`.")
    name: Short | None = None
    skip_empty: bool = Field(default=False, description="Send nothing when nothing is new.")


class SubscriptionChange(_Input):
    """What to change (``briefing subscriptions update``); a field left out stays."""

    topics: list[Short] | Literal["all"] | None = None
    locale: Locale | None = None
    timezone: Short | None = None
    at: Short | None = None
    cron: Short | None = None
    name: Short | None = None
    skip_empty: bool | None = None


class Pause(_Input):
    reason: Short | None = Field(default=None, description="Why (default: by an operator).")


class CreatedSubscription(SubscriptionView):
    secret: str | None = Field(
        default=None, description="The signing secret made for it: shown this once."
    )


class SubscriptionDetail(SubscriptionView):
    deliveries: list[DeliveryView] = Field(description="Its latest deliveries.")


class SubscriptionPage(BaseModel):
    items: list[SubscriptionView]
    limit: int
    offset: int
    next: str | None = Field(description="The next page's URL (null: the last page).")


class DeliveryPage(BaseModel):
    items: list[DeliveryView]
    limit: int
    offset: int
    next: str | None = Field(description="The next page's URL (null: the last page).")


class SendRequest(_Input):
    """Send now through the outbox: to ``subscriptions`` or to ``all`` active ones."""

    subscriptions: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=1000
    )
    all: bool = False
    force: bool = Field(default=False, description="Send to paused subscriptions all the same.")


class Queued(BaseModel):
    period: str
    deliveries: list[int] = Field(description="The new deliveries' ids.")
    poll: str = Field(description="Where to follow them.")


class TestResult(BaseModel):
    ok: bool
    kind: str
    target: str
    status: int | str | None = Field(description="The receiver's status code.")
    answer: str = Field(description="The receiver's answer, secrets masked.")
    attempts: int
    parts: int
    result: str


class StateView(BaseModel):
    revision: str
    state: dict[str, Any]
