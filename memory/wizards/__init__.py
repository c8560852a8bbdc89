"""Wizards: analyses that run as agents of short-term memory.

A wizard caches its results in working memory, shares context with other wizards and
stages the patterns it discovers. ``BaseWizard`` is the base class; the security
wizard lives in ``memory.wizards.security_analysis_wizard`` (it needs bandit, which
this package does not import until that module is).
"""

from __future__ import annotations

from .base import SHARED_SESSION_ID, BaseWizard

__all__ = ["SHARED_SESSION_ID", "BaseWizard"]
