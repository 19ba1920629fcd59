"""Which branch of a conversation tree is on screen.

A conversation is a tree (a regenerated answer is a sibling, never an overwrite). The screen shows
one path from the root down: at every fork it follows the child the person last chose with
``[``/``]``, else the newest one — so a fresh answer is what you see, and switching a sibling
changes everything shown below it.
"""

from __future__ import annotations

from ..records import Message


class ConversationTree:
    def __init__(self, messages: list[Message]) -> None:
        self.by_id: dict[int, Message] = {}
        self.children: dict[int | None, list[Message]] = {}
        self.chosen: dict[int | None, int] = {}
        for m in messages:
            self.add(m)

    def add(self, message: Message, choose: bool = True) -> None:
        """Insert (or refresh) a message; by default it becomes the shown child of its parent."""
        if message.id not in self.by_id:
            self.children.setdefault(message.parent_id, []).append(message)
        else:
            kids = self.children[message.parent_id]
            kids[[k.id for k in kids].index(message.id)] = message
        self.by_id[message.id] = message
        if choose:
            self.chosen[message.parent_id] = message.id

    def branch(self) -> list[Message]:
        """Root → leaf along the chosen children."""
        path: list[Message] = []
        parent: int | None = None
        while kids := self.children.get(parent):
            pick = next((k for k in kids if k.id == self.chosen.get(parent)), kids[-1])
            path.append(pick)
            parent = pick.id
        return path

    def leaf(self) -> Message | None:
        path = self.branch()
        return path[-1] if path else None

    def siblings(self, message_id: int) -> list[Message]:
        """The message and its alternatives: same parent, same role, oldest first."""
        m = self.by_id[message_id]
        return [k for k in self.children.get(m.parent_id, []) if k.role == m.role]

    def step(self, message_id: int, delta: int) -> Message | None:
        """Choose the sibling ``delta`` places away; None when there is none that way."""
        sibs = self.siblings(message_id)
        i = [s.id for s in sibs].index(message_id) + delta
        if not 0 <= i < len(sibs):
            return None
        self.chosen[sibs[i].parent_id] = sibs[i].id
        return sibs[i]
