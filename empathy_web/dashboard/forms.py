from __future__ import annotations

import json
from typing import Any

from django import forms


class JSONTextField(forms.CharField):
    """A textarea holding JSON; cleans to the parsed value."""

    widget = forms.Textarea(attrs={"rows": 3})

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if text in ("", None):
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from None


class AddTaskForm(forms.Form):
    team_id = forms.CharField(max_length=200)
    task_id = forms.CharField(max_length=200)
    task_type = forms.CharField(max_length=200)
    description = forms.CharField(max_length=2000, required=False)
    priority = forms.IntegerField(min_value=1, max_value=10, initial=5)


class SendSignalForm(forms.Form):
    signal_type = forms.CharField(max_length=200)
    team = forms.CharField(max_length=200, required=False, help_text="empty: an org-wide signal")
    target_agent = forms.CharField(
        max_length=200, required=False, help_text="empty: broadcast to every agent"
    )
    data = JSONTextField(required=False, help_text="JSON")


class ShareForm(forms.Form):
    key = forms.CharField(max_length=512)
    value = JSONTextField(help_text="JSON")
