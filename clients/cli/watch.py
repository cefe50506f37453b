"""What `accord sync --watch` says when something arrives.

The live engines report every accepted entry; saying "something arrived" for each
would tell a person nothing. Instead, after entries arrive in a space, the new points
of its timeline (versions, affirmations, pauses, resumes, shared check-ins) are put
into plain sentences: "Sam changed “Kissing” to no.", followed by the item's state
now, as the items list words it. Changes with no timeline point
(the crisis plan's text, notes) get one short sentence of their own.
"""

from __future__ import annotations

from collections.abc import Callable

from client_lib.account import SpaceHandle
from client_lib.agreements import TimelineEvent
from client_lib.errors import NoSuchRecordError

Key = tuple[object, ...]


def _key(event: TimelineEvent) -> Key:
    return (event.at, event.kind, event.member, event.version, event.item, event.safety)


class Narrator:
    """Turns new timeline points of one space into sentences."""

    def __init__(self, handle: SpaceHandle, name_of: Callable[[bytes], str]) -> None:
        self.handle = handle
        self.name_of = name_of
        events = handle.agreements.timeline()
        self._seen = {_key(e) for e in events}
        self._items = {e.item for e in events if e.kind == "version"}

    def news(self) -> list[str]:
        """Sentences for the timeline points that appeared since the last call."""
        lines = []
        for event in self.handle.agreements.timeline():
            key = _key(event)
            if key in self._seen:
                continue
            self._seen.add(key)
            line = self._sentence(event)
            if line:
                lines.append(line)
        return lines

    def _now(self, item: bytes | None) -> str:
        """The item's state now, as the items list words it ("Agreed: yes")."""
        if item is None:
            return ""
        try:
            return self.handle.agreements.item(item).summary + "."
        except NoSuchRecordError:
            return ""

    def _sentence(self, event: TimelineEvent) -> str:
        who = self.name_of(event.member)
        who = who[:1].upper() + who[1:]
        title = f"“{event.title}”" if event.title else "an item"
        if event.kind == "version":
            level = event.level.value if event.level is not None else "?"
            if event.item in self._items:
                line = f"{who} changed {title} to {level}."
            else:
                self._items.add(event.item)
                line = f"{who} added {title} at {level}."
            return f"{line} {self._now(event.item)}"
        if event.kind == "affirmation":
            return f"{who} affirmed {title}. {self._now(event.item)}"
        if event.kind == "pause":
            return f"{who} paused. Everything is a no for now."
        if event.kind == "resume":
            return f"{who} lifted a pause."
        if event.kind == "check-in":
            return f"{who} shared a check-in."
        return ""
