"""A staged pattern: what an agent discovered, as it is staged and stored."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .codec import check_confidence, check_id, encode, holds_nul
from .exceptions import InvalidValue


@dataclass
class StagedPattern:
    """A pattern an agent discovered, staged until a validator decides on it."""

    pattern_id: str
    agent_id: str
    pattern_type: str
    name: str
    description: str
    code: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.5
    interests: list[str] = field(default_factory=list)
    staged_at: datetime | None = None
    # The team it belongs to (None: the whole org's), given or else decided when it is
    # staged (``memory.pattern_teams.resolve_team``).
    team: str | None = None
    session_id: str | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` / ``TypeError`` unless the pattern can be staged."""
        check_id(self.pattern_id, "pattern_id")
        check_id(self.agent_id, "agent_id")
        check_id(self.pattern_type, "pattern_type")
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidValue("a pattern needs a non-empty name")
        if not isinstance(self.description, str):
            raise InvalidValue("description must be a string")
        if self.code is not None and not isinstance(self.code, str):
            raise InvalidValue("code must be a string or None")
        if not isinstance(self.context, dict):
            raise InvalidValue("context must be a dict")
        check_confidence(self.confidence)
        if self.team is not None:
            check_id(self.team, "team")
        if self.session_id is not None:
            check_id(self.session_id, "session_id")
        if holds_nul([self.name, self.description, self.code, self.context, self.interests]):
            raise InvalidValue("a pattern's text may not hold NUL characters (\\x00)")

    def to_json(self, limit: int) -> bytes:
        fields = asdict(self)
        del fields["staged_at"]
        for optional in ("team", "session_id"):
            if fields[optional] is None:
                del fields[optional]
        return encode(fields, limit, "pattern")

    @classmethod
    def from_json(cls, raw: bytes | str) -> StagedPattern:
        fields = json.loads(raw)
        staged = fields.pop("staged_at", None)
        pattern = cls(**fields)
        if staged is not None:
            pattern.staged_at = datetime.fromtimestamp(staged, tz=UTC)
        return pattern
