"""Load and validate the briefing state from YAML files.

Every problem is reported as ``file:line: message``; nothing is half-loaded: either a
whole, consistent ``State`` comes back or ``StateError`` lists what is wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.errors import Problem, StateError
from bot.state.model import Actor, Development, Source, StateFile, Story, Topic

PathKey = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates and times as text (the model parses them)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class State:
    """The whole story at one revision: merged, validated and cross-checked."""

    story: Story
    topics: dict[str, Topic]
    actors: dict[str, Actor]
    sources: dict[str, Source]
    developments: tuple[Development, ...]
    revision: str = field(default="")


@dataclass
class _Document:
    """One parsed file with its node tree, to turn a data path into a line number."""

    name: str
    node: yaml.Node | None

    def line(self, path: PathKey) -> int:
        node = self.node
        line = node.start_mark.line + 1 if node is not None else 1
        for key in path:
            node = _child(node, key)
            if node is None:
                break
            line = node.start_mark.line + 1
        return line


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                found: yaml.Node = value_node
                return found
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        item: yaml.Node = node.value[key]
        return item
    return None


def _duplicate_keys(node: yaml.Node | None) -> Iterator[tuple[int, str]]:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                yield key_node.start_mark.line + 1, f"duplicate key {key_node.value!r}"
            seen.add(key_node.value)
            yield from _duplicate_keys(value_node)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item)


def state_files(path: Path) -> list[Path]:
    """The YAML files that make up the state at ``path`` (a file or a directory)."""
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return [path]


def _describe(error: Any) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "missing":
        last = error["loc"][-1] if error["loc"] else ""
        if last in ("fr", "en"):
            language = {"fr": "French", "en": "English"}[str(last)]
            return f"{loc}: missing {language} translation"
        return f"{loc}: required field missing"
    if kind == "extra_forbidden":
        return f"{loc}: unknown field"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{loc}: {message}" if loc else message


def _parse(text: str, display: str) -> tuple[_Document, StateFile | None, list[Problem]]:
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else {}
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        return _Document(display, None), None, [Problem(display, line, f"invalid YAML: {reason}")]
    doc = _Document(display, node)
    if node is None:
        return doc, None, [Problem(display, 1, "the file is empty")]
    problems = [Problem(display, line, message) for line, message in _duplicate_keys(node)]
    if not isinstance(data, dict):
        problems.append(Problem(display, doc.line(()), "expected a mapping at the top level"))
        return doc, None, problems
    try:
        parsed = StateFile.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            problems.append(Problem(display, doc.line(tuple(error["loc"])), _describe(error)))
        return doc, None, problems
    if parsed.story is None and not any(
        (parsed.topics, parsed.actors, parsed.sources, parsed.developments)
    ):
        problems.append(
            Problem(
                display,
                doc.line(()),
                "the file defines nothing (no story, topics, actors, sources or developments)",
            )
        )
    return doc, parsed, problems


def read_state_files(path: Path | str, *, base: Path | None = None) -> dict[str, str]:
    """The text of every state file at ``path``, by display name; ``StateError`` if unreadable."""
    root = Path(path)
    files = state_files(root)
    if not files:
        raise StateError([Problem(str(root), 1, "no state files (*.yaml) found")])
    texts: dict[str, str] = {}
    problems = []
    for file in files:
        display = _display(file, base)
        try:
            texts[display] = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(display, 1, f"cannot read file: {exc}"))
    if problems:
        raise StateError(problems)
    return texts


def revision_of(texts: dict[str, str]) -> str:
    """A short content hash of a set of state files (names and texts)."""
    digest = hashlib.sha256()
    for name in sorted(texts):
        digest.update(Path(name).name.encode() + b"\0" + texts[name].encode() + b"\0")
    return digest.hexdigest()[:16]


def load_state(path: Path | str, *, base: Path | None = None) -> State:
    """Load, validate and cross-check the state at ``path`` (a file or a directory).

    Raises ``StateError`` with every problem found, each as ``file:line: message``.
    """
    return parse_state(read_state_files(path, base=base))


def parse_state(texts: dict[str, str]) -> State:
    """Validate and cross-check state files given as ``{name: YAML text}``."""
    parsed: list[tuple[_Document, StateFile]] = []
    problems: list[Problem] = []
    for display, text in texts.items():
        doc, state_file, file_problems = _parse(text, display)
        problems.extend(file_problems)
        if state_file is not None:
            parsed.append((doc, state_file))
    if problems:
        raise StateError(problems)
    state, problems = _merge(parsed, first=next(iter(texts)))
    if problems or state is None:
        raise StateError(problems)
    return State(
        story=state.story,
        topics=state.topics,
        actors=state.actors,
        sources=state.sources,
        developments=state.developments,
        revision=revision_of(texts),
    )


def _display(file: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(file.resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return str(file)


def _merge(
    parsed: Sequence[tuple[_Document, StateFile]], *, first: str
) -> tuple[State | None, list[Problem]]:
    problems: list[Problem] = []
    story: Story | None = None
    topics: dict[str, Topic] = {}
    actors: dict[str, Actor] = {}
    sources: dict[str, Source] = {}
    developments: dict[str, tuple[_Document, int, Development]] = {}
    seen: dict[str, tuple[str, int]] = {}

    def register(doc: _Document, section: str, index: int, item_id: str) -> bool:
        line = doc.line((section, index, "id"))
        if item_id in seen:
            where = "{}:{}".format(*seen[item_id])
            problems.append(Problem(doc.name, line, f"duplicate id {item_id!r} (first at {where})"))
            return False
        seen[item_id] = (doc.name, line)
        return True

    for doc, data in parsed:
        if data.story is not None:
            if story is not None:
                problems.append(Problem(doc.name, doc.line(("story",)), "story is defined twice"))
            story = data.story
        for index, topic in enumerate(data.topics):
            if register(doc, "topics", index, topic.id):
                topics[topic.id] = topic
        for index, actor in enumerate(data.actors):
            if register(doc, "actors", index, actor.id):
                actors[actor.id] = actor
        for index, source in enumerate(data.sources):
            if register(doc, "sources", index, source.id):
                sources[source.id] = source
        for index, dev in enumerate(data.developments):
            if register(doc, "developments", index, dev.id):
                developments[dev.id] = (doc, index, dev)

    if story is None:
        problems.append(Problem(first, 1, "no story defined (a 'story:' with a title)"))
    if not topics:
        problems.append(Problem(first, 1, "no topics defined"))
    for doc, index, dev in developments.values():
        problems.extend(_check_references(doc, index, dev, topics, actors, sources))
    if problems or story is None:
        return None, problems
    ordered = sorted(
        (item[2] for item in developments.values()),
        key=lambda d: (d.recorded, d.id),
    )
    return State(story, topics, actors, sources, tuple(ordered)), []


def _check_references(
    doc: _Document,
    index: int,
    dev: Development,
    topics: dict[str, Topic],
    actors: dict[str, Actor],
    sources: dict[str, Source],
) -> Iterable[Problem]:
    base: PathKey = ("developments", index)
    if dev.topic not in topics:
        known = ", ".join(sorted(topics)) or "none"
        yield Problem(
            doc.name,
            doc.line((*base, "topic")),
            f"{dev.id}: unknown topic {dev.topic!r} (known: {known})",
        )
    for i, actor in enumerate(dev.reported_by):
        if actor not in actors:
            yield Problem(
                doc.name, doc.line((*base, "reported_by", i)), f"{dev.id}: unknown actor {actor!r}"
            )
    for i, side in enumerate(dev.sides):
        if side.actor not in actors:
            yield Problem(
                doc.name,
                doc.line((*base, "sides", i, "actor")),
                f"{dev.id}: unknown actor {side.actor!r}",
            )
    for i, source in enumerate(dev.sources):
        if source not in sources:
            yield Problem(
                doc.name, doc.line((*base, "sources", i)), f"{dev.id}: unknown source {source!r}"
            )
