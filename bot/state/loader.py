"""Load and validate the briefing state from YAML files.

Every problem is reported as ``file:line: message``; nothing is half-loaded: either a
whole, consistent ``State`` comes back or ``StateError`` lists what is wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bot.errors import Problem, StateError
from bot.state.history import StatusVersion, Version, standing_at, updated
from bot.state.model import (
    Actor,
    Additions,
    Change,
    Development,
    Source,
    StateFile,
    Story,
    Topic,
)

PathKey = tuple[str | int, ...]
_M = TypeVar("_M", bound=BaseModel)


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates and times as text (the model parses them)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class State:
    """The whole story at one revision: merged, validated and cross-checked.

    ``developments`` and the topics' statuses are the newest versions (retracted
    developments left out); ``history`` and ``statuses`` hold every version, and
    ``changes`` the editors' journal they come from.
    """

    story: Story
    topics: dict[str, Topic]
    actors: dict[str, Actor]
    sources: dict[str, Source]
    developments: tuple[Development, ...]
    revision: str = field(default="")
    history: dict[str, tuple[Version, ...]] = field(default_factory=dict)
    statuses: dict[str, tuple[StatusVersion, ...]] = field(default_factory=dict)
    changes: tuple[Change, ...] = ()

    @property
    def updated_at(self) -> datetime | None:
        """When the state last changed: its latest development version or status change."""
        moments = [v.at for vs in self.history.values() for v in vs]
        moments += [v.at for vs in self.statuses.values() for v in vs if v.at is not None]
        return max(moments, default=None)


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


def _parse(
    text: str,
    display: str,
    *,
    model: type[_M] = StateFile,  # type: ignore[assignment]
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[_Document, _M | None, list[Problem]]:
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
        parsed = model.model_validate(prepare(data) if prepare else data)
    except ValidationError as exc:
        for error in exc.errors():
            problems.append(Problem(display, doc.line(tuple(error["loc"])), _describe(error)))
        return doc, None, problems
    if not any(parsed.model_dump(exclude_defaults=True).values()):
        fields = list(model.model_fields)
        sections = ", ".join(fields[:-1]) + " or " + fields[-1]
        problems.append(Problem(display, doc.line(()), f"the file defines nothing (no {sections})"))
    return doc, parsed, problems


def parse_additions(text: str, display: str, state: State) -> Additions:
    """Read a file of new developments (with the actors and sources they need) and check
    it against ``state``; ``StateError`` with ``file:line: message`` for every problem.

    Developments without ``recorded`` get the Unix epoch as a placeholder: the caller
    records them at the time of the change.
    """
    doc, parsed, problems = _parse(text, display, model=Additions, prepare=_with_recorded)
    if parsed is None or problems:
        raise StateError(problems)
    actors = {**state.actors, **{a.id: a for a in parsed.actors}}
    sources = {**state.sources, **{s.id: s for s in parsed.sources}}
    taken = {*state.actors, *state.sources, *state.history, *state.topics}
    for section in ("actors", "sources", "developments"):
        for index, item in enumerate(getattr(parsed, section)):
            if item.id in taken:
                line = doc.line((section, index, "id"))
                problems.append(Problem(display, line, f"id {item.id!r} is already in the state"))
            taken.add(item.id)
    for index, dev in enumerate(parsed.developments):
        problems.extend(
            _check_references(doc, ("developments", index), dev, state.topics, actors, sources)
        )
    if problems:
        raise StateError(problems)
    return parsed


PLACEHOLDER_RECORDED = "1970-01-01T00:00:00Z"


def _with_recorded(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` where each development without ``recorded`` gets the placeholder."""
    devs = data.get("developments")
    if isinstance(devs, list):
        data = {
            **data,
            "developments": [
                {"recorded": PLACEHOLDER_RECORDED, **d} if isinstance(d, dict) else d for d in devs
            ],
        }
    return data


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
    return replace(state, revision=revision_of(texts))


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
    developments: dict[str, tuple[_Document, PathKey, Development]] = {}
    changes: list[tuple[_Document, int, Change]] = []
    seen: dict[str, tuple[str, int]] = {}

    def register(doc: _Document, section: str | PathKey, index: int, item_id: str) -> bool:
        prefix = (section,) if isinstance(section, str) else section
        line = doc.line((*prefix, index, "id"))
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
                developments[dev.id] = (doc, ("developments", index), dev)
        changes.extend((doc, index, change) for index, change in enumerate(data.changes))

    if story is None:
        problems.append(Problem(first, 1, "no story defined (a 'story:' with a title)"))
    if not topics:
        problems.append(Problem(first, 1, "no topics defined"))
    for doc, path, dev in developments.values():
        problems.extend(_check_references(doc, path, dev, topics, actors, sources))
    if problems or story is None:
        return None, problems
    journal = _Journal(
        topics=topics,
        actors=actors,
        sources=sources,
        history={
            dev.id: (Version(1, dev.recorded, "recorded", dev),)
            for _, _, dev in developments.values()
        },
        statuses={t.id: (StatusVersion(1, t.recorded, t.status),) for t in topics.values()},
        register=register,
    )
    for doc, index, change in changes:
        problems.extend(journal.apply(doc, index, change))
    if problems:
        return None, problems
    current = [vs[-1] for vs in journal.history.values() if not vs[-1].retracted]
    ordered = sorted((v.development for v in current), key=lambda d: (d.recorded, d.id))
    state = State(
        story,
        {t: topic.model_copy(update={"status": journal.statuses[t][-1].text})
         for t, topic in topics.items()},
        actors,
        sources,
        tuple(ordered),
        history=journal.history,
        statuses=journal.statuses,
        changes=tuple(change for _, _, change in changes),
    )  # fmt: skip
    return state, []


@dataclass
class _Journal:
    """Applies the editors' changes, in order, to the developments and status lines."""

    topics: dict[str, Topic]
    actors: dict[str, Actor]
    sources: dict[str, Source]
    history: dict[str, tuple[Version, ...]]
    statuses: dict[str, tuple[StatusVersion, ...]]
    register: Any
    last: datetime | None = None

    def apply(self, doc: _Document, index: int, change: Change) -> list[Problem]:
        base: PathKey = ("changes", index)

        def problem(path: PathKey, message: str) -> list[Problem]:
            return [Problem(doc.name, doc.line((*base, *path)), message)]

        if self.last is not None and change.at < self.last:
            return problem(("at",), f"changes must be in time order ({change.at} is earlier "
                                    f"than the change before, {self.last})")  # fmt: skip
        self.last = change.at
        who = {"by": change.by, "because": change.because}
        if change.add is not None:
            return self._add(doc, base, change)
        if change.status is not None:
            topic = change.status.topic
            if topic not in self.topics:
                known = ", ".join(sorted(self.topics))
                return problem(("status", "topic"), f"unknown topic {topic!r} (known: {known})")
            lines = self.statuses[topic]
            line = StatusVersion(len(lines) + 1, change.at, change.status.text, **who)
            self.statuses[topic] = (*lines, line)
            return []
        target = change.update or change.retract
        assert target is not None  # a change holds exactly one kind
        section = "update" if change.update is not None else "retract"
        versions = self.history.get(target.id, ())
        if not versions:
            return problem((section, "id"), f"unknown development {target.id!r}")
        last = versions[-1]
        if last.retracted:
            return problem((section, "id"), f"{target.id}: already retracted")
        if change.at < last.at:
            return problem(("at",), f"{target.id}: this change is earlier than its version "
                                    f"{last.number} ({last.at})")  # fmt: skip
        if change.update is None:
            version = Version(len(versions) + 1, change.at, "retracted", last.development, **who)
        else:
            try:
                dev, kind = updated(last.development, change.update)
            except ValidationError as exc:
                return [
                    Problem(doc.name, doc.line((*base, "update")), _describe(error))
                    for error in exc.errors()
                ]
            except ValueError as exc:
                return problem(("update",), str(exc))
            found = list(
                _check_references(doc, (*base, "update"), dev, self.topics, self.actors,
                                  self.sources)
            )  # fmt: skip
            if found:
                return found
            version = Version(len(versions) + 1, change.at, kind, dev, **who)
        self.history[target.id] = (*versions, version)
        return []

    def _add(self, doc: _Document, base: PathKey, change: Change) -> list[Problem]:
        assert change.add is not None
        problems: list[Problem] = []
        add = (*base, "add")
        for i, actor in enumerate(change.add.actors):
            if self.register(doc, (*add, "actors"), i, actor.id):
                self.actors[actor.id] = actor
        for i, source in enumerate(change.add.sources):
            if self.register(doc, (*add, "sources"), i, source.id):
                self.sources[source.id] = source
        for i, dev in enumerate(change.add.developments):
            path = (*add, "developments", i)
            if not self.register(doc, (*add, "developments"), i, dev.id):
                continue
            found = list(_check_references(doc, path, dev, self.topics, self.actors, self.sources))
            problems.extend(found)
            if not found:
                version = Version(1, change.at, "added", dev, change.by, change.because)
                self.history[dev.id] = (version,)
        return problems


def at_moment(state: State, moment: datetime) -> dict[str, Version]:
    """The version of each development that stood just before ``moment`` (retracted ones
    included, marked as such)."""
    found = {}
    for dev_id, versions in state.history.items():
        version = standing_at(versions, moment)
        if version is not None:
            found[dev_id] = version
    return found


def _check_references(
    doc: _Document,
    base: PathKey,
    dev: Development,
    topics: dict[str, Topic],
    actors: dict[str, Actor],
    sources: dict[str, Source],
) -> Iterable[Problem]:
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
