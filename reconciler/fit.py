"""Fitting markdown into a size cap by leaving out whole blocks, never by cutting text.

The one place output is shortened (GitHub refuses comments over 65,536 characters).
A block is a finished piece of markdown (a paragraph, a table, a fenced code block,
a whole `<details>`), so what is left out is always a whole block and the result
stays valid: no fence or `<details>` is ever left open. Callers say what was left
out in a tail whose length they reserve up front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

SEPARATOR = "\n\n"
GITHUB_COMMENT_LIMIT = 65_536  # GitHub refuses longer comments (and issue bodies)


@dataclass
class Budget:
    """Blocks added in order while they fit in `room` characters (separators included)."""

    room: int
    blocks: list[str] = field(default_factory=list)

    def fits(self, block: str) -> bool:
        return self._cost(block) <= self.room

    def add(self, block: str) -> bool:
        """Add `block` if it fits; whether it was added."""
        cost = self._cost(block)
        if cost > self.room:
            return False
        self.blocks.append(block)
        self.room -= cost
        return True

    def force(self, block: str) -> None:
        """Add `block` whether or not it fits (the part a caller must never leave out)."""
        self.room -= self._cost(block)
        self.blocks.append(block)

    def _cost(self, block: str) -> int:
        return len(block) + (len(SEPARATOR) if self.blocks else 0)

    def text(self) -> str:
        return SEPARATOR.join(self.blocks)


def take_lines(
    lines: Sequence[str], room: int, more: str = "and {n} more"
) -> tuple[list[str], int]:
    """As many whole lines as fit in `room` (newlines counted), then `more` naming the rest;
    and how many were left out.

    `more` is formatted with `n`, the number left out; its room is kept back while
    lines are taken.
    """
    total = sum(len(line) + 1 for line in lines)
    if total <= room:
        return list(lines), 0
    reserve = len(more.format(n=len(lines))) + 1
    taken: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 + reserve > room:
            break
        taken.append(line)
        used += len(line) + 1
    left = len(lines) - len(taken)
    return [*taken, more.format(n=left)], left


def fenced(text: str, lang: str = "") -> str:
    """A code block no line of `text` can close (values may hold runs of backticks)."""
    longest = 0
    run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"
