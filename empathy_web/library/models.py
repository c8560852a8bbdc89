"""What must outlive Redis's TTLs: promoted patterns and the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models

if TYPE_CHECKING:
    from memory import StagedPattern


class PromotedPatternQuerySet(models.QuerySet):
    def search(self, text: str = "", pattern_type: str = "") -> PromotedPatternQuerySet:
        """Patterns with ``text`` in their name, description, code or id, of
        ``pattern_type``; a blank one matches every pattern."""
        found = self
        if text:
            found = found.filter(
                models.Q(name__icontains=text)
                | models.Q(description__icontains=text)
                | models.Q(code__icontains=text)
                | models.Q(pattern_id__icontains=text)
            )
        if pattern_type:
            found = found.filter(pattern_type=pattern_type)
        return found


class PromotedPattern(models.Model):
    """A staged pattern a validator approved into the library."""

    pattern_id = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=500)
    pattern_type = models.CharField(max_length=200, db_index=True)
    description = models.TextField(blank=True)
    code = models.TextField(blank=True)
    confidence = models.FloatField()
    agent_id = models.CharField(max_length=200, help_text="the agent that discovered it")
    context = models.JSONField(default=dict, blank=True)
    interests = models.JSONField(default=list, blank=True)
    team = models.CharField(max_length=200, blank=True, help_text="where it was found")
    session_id = models.CharField(max_length=200, blank=True)
    staged_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True, help_text="the validator's note on approving it")

    objects = PromotedPatternQuerySet.as_manager()

    class Meta:
        ordering = ["-promoted_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.pattern_id})"

    @classmethod
    def from_staged(cls, pattern: StagedPattern, **fields: Any) -> PromotedPattern:
        """An unsaved row for ``pattern``, with ``fields`` (``promoted_by``, ``note``)
        besides what the pattern carries; blanks stand for its missing optional text."""
        return cls(
            pattern_id=pattern.pattern_id,
            name=pattern.name,
            pattern_type=pattern.pattern_type,
            description=pattern.description,
            code=pattern.code or "",
            confidence=pattern.confidence,
            agent_id=pattern.agent_id,
            context=pattern.context,
            interests=pattern.interests,
            team=pattern.team or "",
            session_id=pattern.session_id or "",
            staged_at=pattern.staged_at,
            **fields,
        )


class AuditEntry(models.Model):
    """One action a person took: who, with which tier, what, on what, when, and details."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, help_text="kept if the user is deleted")
    tier = models.CharField(max_length=20)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target}"


class AgentToken(models.Model):
    """A bearer token an agent uses to read the library's API. Only its SHA-256 is
    kept; stewards see the token once, when they create it, and revoke it here."""

    name = models.CharField(max_length=200, help_text="the agent (or team) it is for")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created"]
        verbose_name = "agent API token"

    def __str__(self) -> str:
        return f"{self.name} ({'revoked' if self.revoked_at else 'active'})"

    @property
    def active(self) -> bool:
        return self.revoked_at is None
