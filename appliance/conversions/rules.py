"""When a call or a lead is a conversion, pure: every condition a rule sets must hold."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Facts:
    kind: str  # call or lead
    answered: bool = False
    talk_seconds: float = 0.0
    first_time: bool = False
    source: str | None = None
    form: str | None = None


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    applies_to: str  # call or lead
    answered: bool = False
    min_talk_seconds: int | None = None
    first_time: bool = False
    source_contains: str | None = None
    form: str | None = None
    value: float | None = None
    currency: str = "USD"

    def matches(self, facts: Facts) -> bool:
        if facts.kind != self.applies_to:
            return False
        if self.answered and not facts.answered:
            return False
        if self.min_talk_seconds is not None and facts.talk_seconds < self.min_talk_seconds:
            return False
        if self.first_time and not facts.first_time:
            return False
        if (
            self.source_contains
            and self.source_contains.lower() not in (facts.source or "").lower()
        ):
            return False
        return not self.form or self.form == facts.form
