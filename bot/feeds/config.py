"""``config/feeds.yaml`` (which feeds to poll) and ``config/topics.yaml`` (which words file an
entry under which topic): loaded, validated, every problem reported as ``file:line: message``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import ConfigError
from bot.settings import PACKAGE, checkout, parse_duration

M = TypeVar("M", bound=BaseModel)
DEFAULT_TIMEOUT = 10.0
MAX_BYTES = 5 * 1024 * 1024


class FeedConfig(BaseModel):
    """One feed: where it is, what it is called, its language, how often it is polled and
    whether its entries wait for review."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=200)
    language: Literal["en", "fr"]
    interval: timedelta = timedelta(hours=1)
    publish: Literal["review", "auto"] = "review"
    topics: tuple[str, ...] | None = None
    allow_private: bool = False
    enabled: bool = True
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, le=DEFAULT_TIMEOUT)

    @field_validator("interval", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("interval")
    @classmethod
    def _at_least_a_minute(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("a feed is polled at most once a minute (interval: 1m or more)")
        return value

    @field_validator("url")
    @classmethod
    def _web_or_file(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "file:")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class FeedsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    feeds: list[FeedConfig] = Field(default_factory=list)


class TopicWords(BaseModel):
    """A topic's keywords and phrases, in each language (every one is tried on every entry)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    en: list[str] = Field(default_factory=list)
    fr: list[str] = Field(default_factory=list)

    @property
    def words(self) -> list[str]:
        return [w for w in (*self.en, *self.fr) if w.strip()]


class TopicsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    topics: dict[str, TopicWords] = Field(default_factory=dict)


def shipped_config(name: str) -> Path:
    """A file shipped in ``config/`` (its copy in ``bot/_config`` in an installed wheel)."""
    root = checkout()
    return root / "config" / name if root is not None else PACKAGE / "_config" / name


def load_feeds(path: Path) -> list[FeedConfig]:
    """The enabled feeds of ``path`` (none if the file does not exist); ``ConfigError``
    listing each problem as ``file:line: message``."""
    if not path.exists():
        return []
    loaded = _load(path, FeedsFile)
    urls: dict[str, int] = {}
    for index, feed in enumerate(loaded.feeds):
        if feed.url in urls or feed.name in {f.name for f in loaded.feeds[:index]}:
            raise ConfigError(f"{path}: feeds[{index}]: the same feed (URL or name) twice")
        urls[feed.url] = index
    return [f for f in loaded.feeds if f.enabled]


def load_topics(path: Path, *, known: list[str]) -> dict[str, list[str]]:
    """Keywords and phrases by topic; a topic the state does not know is an error."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file (the topic rules for news feeds)")
    loaded = _load(path, TopicsFile)
    unknown = [t for t in loaded.topics if t not in known]
    if unknown:
        raise ConfigError(
            f"{path}:{_line(path, ('topics', unknown[0]))}: unknown topic {unknown[0]!r} "
            f"(known: {', '.join(known)})"
        )
    return {topic: words.words for topic, words in loaded.topics.items()}


def check_topics(feeds: list[FeedConfig], path: Path, *, known: list[str]) -> None:
    """A feed restricted to a topic the state does not know is an error."""
    for index, feed in enumerate(feeds):
        for topic in feed.topics or ():
            if topic not in known:
                raise ConfigError(
                    f"{path}: feed {feed.name!r} (feeds[{index}]): unknown topic {topic!r} "
                    f"(known: {', '.join(known)})"
                )


def _load(path: Path, model: type[M]) -> M:
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        problems = [
            f"{path}:{_line(path, error['loc'])}: {'.'.join(map(str, error['loc']))}: "
            f"{error['msg']}"
            for error in exc.errors()
        ]
        raise ConfigError("; ".join(problems)) from exc


def _line(path: Path, loc: tuple[Any, ...]) -> int:
    """The line of the node at ``loc`` in ``path`` (the deepest one found)."""
    try:
        node: yaml.Node | None = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return 1
    line = node.start_mark.line + 1 if node is not None else 1
    for key in loc:
        pair: tuple[yaml.Node, yaml.Node] | None = None
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            pair = (node.value[key], node.value[key])
        if pair is None:
            break
        line, node = pair[0].start_mark.line + 1, pair[1]
    return line
