"""What must outlive Redis's TTLs: promoted patterns, the audit trail and the agents'
credentials."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from empathy_web.accounts.teams import TeamAccess, access_of_credential
from empathy_web.accounts.tiers import TIER_CHOICES
from memory.codec import MAX_ACTOR_LENGTH, MAX_ID_LENGTH, check_id
from memory.exceptions import InvalidValue
from memory.tiers import AccessTier

if TYPE_CHECKING:
    from memory import StagedPattern


class PromotedPatternQuerySet(models.QuerySet):
    def search(
        self, text: str = "", pattern_type: str = "", team: str = ""
    ) -> PromotedPatternQuerySet:
        """Patterns with ``text`` in their name, description, code or id, of
        ``pattern_type``, found in ``team``; a blank one matches every pattern. No
        stored text holds a NUL (staging refuses one), and PostgreSQL refuses one in a
        query: none matches."""
        if "\x00" in text or "\x00" in pattern_type or "\x00" in team:
            return self.none()
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
        if team:
            found = found.filter(team=team)
        return found


class PromotedPattern(models.Model):
    """A staged pattern a validator approved into the library."""

    pattern_id = models.CharField(max_length=MAX_ID_LENGTH, unique=True)
    name = models.TextField()
    pattern_type = models.CharField(max_length=MAX_ID_LENGTH, db_index=True)
    description = models.TextField(blank=True)
    code = models.TextField(blank=True)
    confidence = models.FloatField()
    agent_id = models.CharField(max_length=MAX_ID_LENGTH, help_text="the agent that discovered it")
    context = models.JSONField(default=dict, blank=True)
    interests = models.JSONField(default=list, blank=True)
    team = models.CharField(max_length=MAX_ID_LENGTH, blank=True, help_text="where it was found")
    session_id = models.CharField(max_length=MAX_ID_LENGTH, blank=True)
    staged_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_by_agent = models.CharField(
        max_length=MAX_ID_LENGTH, blank=True, help_text="the validator agent, if not a person"
    )
    promoted_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True, help_text="the validator's note on approving it")

    objects = PromotedPatternQuerySet.as_manager()

    class Meta:
        ordering = ["-promoted_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.pattern_id})"

    @property
    def approver(self) -> str:
        """Who approved it, as pages say it."""
        if self.promoted_by_agent:
            return f"agent {self.promoted_by_agent}"
        return self.promoted_by.get_username() if self.promoted_by else "a deleted user"

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
    """One action a person took: who, with which tier, in which team, what, on what,
    when, and details."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(
        max_length=MAX_ACTOR_LENGTH, help_text="kept if the user is deleted"
    )
    tier = models.CharField(max_length=20)
    team = models.CharField(
        max_length=MAX_ID_LENGTH, blank=True, db_index=True, help_text="empty: org-wide"
    )
    action = models.CharField(max_length=64, db_index=True)
    target = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target}"


def _check_agent_id(value: str) -> None:
    try:
        check_id(value, "agent id")
    except InvalidValue as exc:
        raise ValidationError(str(exc)) from None


class AgentCredential(models.Model):
    """What an agent presents to the server: its agent id, tier and teams come from
    here, never from the request. Only a SHA-256 of the secret is kept; stewards see
    the secret once, when they issue it, and revoke it here with effect at once."""

    agent_id = models.CharField(
        max_length=MAX_ID_LENGTH,
        validators=[_check_agent_id],
        db_index=True,
        help_text="the agent it acts as",
    )
    tier = models.CharField(max_length=20, choices=TIER_CHOICES, default=AccessTier.OBSERVER.name)
    all_teams = models.BooleanField(default=False, help_text="it may act in every team")
    teams = models.JSONField(default=list, blank=True, help_text="the teams it may act in")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="none: never")
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created"]
        verbose_name = "agent credential"

    def __str__(self) -> str:
        return f"{self.agent_id} ({self.tier.lower()}, {self.status})"

    @property
    def access_tier(self) -> AccessTier:
        return AccessTier[self.tier]

    @property
    def status(self) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def access(self) -> TeamAccess:
        """Its teams, at its tier."""
        return access_of_credential(self)

    def may_act_in(self, team: str) -> bool:
        """Whether it may act in ``team``."""
        return self.access.includes(team)
