"""What a proposer may know about a task: its name, a one-line domain description, class names
and the hand-written templates that seed the pool. Images stay with the scorer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str  # e.g. "photos of animals, fruit and flowers"
    class_names: tuple[str, ...]
    handwritten_templates: tuple[str, ...] = field(default_factory=tuple)
