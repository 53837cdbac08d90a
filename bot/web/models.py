"""The API's request and answer bodies (their JSON Schemas are the OpenAPI document's);
subscriptions, deliveries, the state's history and feed entries are shown as the CLI's
``--json`` shows them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.operations.deliveries import DeliveryView
from bot.operations.subscriptions import SubscriptionView
from bot.state.model import LINE_LIMIT, TEXT_LIMIT
from bot.store.tables import MAX_ID as MAX_ID

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


# ── The state's editing and the feeds' review ────────────────────────────────────────────

Paragraph = Annotated[str, Field(min_length=1, max_length=TEXT_LIMIT)]
Name = Annotated[str, Field(min_length=1, max_length=LINE_LIMIT)]
Revision = Annotated[int, Field(ge=1, le=MAX_ID)]
MAX_YAML = 30_000  # characters: with the rest of the JSON, well under the request body's limit
BY = "Who makes the change (default: BRIEFING_EDITOR, else `api`)."
EXPECT = (
    "Refuse unless the item is still at this revision (the last `version` of its history; "
    "needed to change it on top of another editor's change)."
)
SAME = "The new text (default: unchanged)."


class NewDevelopments(_Input):
    """Developments to add (and the actors and sources they need), as a YAML document of
    the same schema as `config/state/` (`briefing state add --file`)."""

    yaml: str = Field(
        min_length=1,
        max_length=MAX_YAML,
        description="The YAML document (a longer one: send it as application/yaml).",
    )
    because: Paragraph | None = Field(
        default=None, description="Why (kept in the history): here, or in the query."
    )
    by: Name | None = Field(default=None, description=BY)


class DevelopmentChange(_Input):
    """What to change in a development (`briefing state update`); a field left out stays."""

    standing: Short | None = Field(
        default=None, description="confirmed, claimed, contested or expected."
    )
    title_en: Short | None = Field(default=None, description=SAME)
    title_fr: Short | None = Field(default=None, description=SAME)
    summary_en: Paragraph | None = Field(default=None, description=SAME)
    summary_fr: Paragraph | None = Field(default=None, description=SAME)
    reported_by: list[Short] | None = Field(
        default=None, max_length=100, description="Who now reports or claims it (actor ids)."
    )
    add_source: list[Short] | None = Field(
        default=None, max_length=100, description="Source ids to add."
    )
    because: Paragraph = Field(description="Why (kept in the history).")
    by: Name | None = Field(default=None, description=BY)
    expect_revision: Revision | None = Field(default=None, description=EXPECT)


class StatusLine(_Input):
    """A topic's new status line, in both languages (`briefing state status`)."""

    en: Paragraph
    fr: Paragraph
    because: Paragraph = Field(description="Why (kept in the history).")
    by: Name | None = Field(default=None, description=BY)
    expect_revision: Revision | None = Field(default=None, description=EXPECT)


class Retraction(_Input):
    """Why a development is withdrawn (`briefing state retract`)."""

    because: Paragraph = Field(description="Why (kept in the history).")
    by: Name | None = Field(default=None, description=BY)
    expect_revision: Revision | None = Field(default=None, description=EXPECT)


class EditedView(BaseModel):
    """A change stored (as `briefing state … --json` prints it)."""

    item: str = Field(description="The development(s) or topic changed.")
    version: int = Field(description="The item's new version (its `expect_revision` next).")
    revision: str = Field(description="The state's new revision.")
    number: int = Field(description="The state revision's sequence number.")
    change: str = Field(description="What changed, in one line.")


class Acceptance(_Input):
    """Accept a feed entry (`briefing review accept`)."""

    topic: Short | None = Field(
        default=None, description="File it under this topic (default: its keywords' choice)."
    )
    importance: Annotated[int, Field(ge=1, le=5)] | None = Field(
        default=None, description="1 to 5 (default 2)."
    )
    by: Name | None = Field(default=None, description=BY)


class Rejection(_Input):
    """Reject a feed entry (`briefing review reject`)."""

    because: Paragraph | None = Field(default=None, description="Why (kept with the entry).")
    by: Name | None = Field(default=None, description=BY)
