"""The live fragments' renderings: the feed's lines are rendered once per process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from empathy_web.dashboard import fragments
from memory import AccessTier, EmpathyOS
from tests.web.pages import everywhere

VIEWER = everywhere("viewer", AccessTier.OBSERVER)


@pytest.fixture
def rendered_lines(monkeypatch) -> Iterator[list[str]]:
    """The ids of the signals whose line was rendered, from an empty cache."""
    monkeypatch.setattr(fragments, "_signal_lines", {})
    lines: list[str] = []
    original = fragments.render_to_string

    def counting(template: str, context: dict, *args, **kwargs) -> str:
        if template == "dashboard/_signal.html":
            lines.append(context["signal"]["id"])
        return original(template, context, *args, **kwargs)

    monkeypatch.setattr(fragments, "render_to_string", counting)
    yield lines


def test_pages_at_different_places_in_the_feed_share_each_signals_line(memory, rendered_lines):
    sender = EmpathyOS("agent", short_term_memory=memory)
    sent = [sender.send_signal("n", {"i": i})["id"] for i in range(6)]
    behind = fragments.render_new_signals(VIEWER, sent[0], {})
    ahead = fragments.render_new_signals(VIEWER, sent[3], {})
    assert fragments.render_new_signals(VIEWER, sent[0], {}) == behind  # same as rendered

    assert sorted(rendered_lines) == sorted(sent[1:])  # each line once, for both pages
    for batch, shown in ((behind, sent[1:]), (ahead, sent[4:])):
        ids = [part.split('"')[0] for part in batch.html.split('data-signal-id="')[1:]]
        assert ids == list(reversed(shown))  # newest first, as before
        assert batch.html.startswith('<div hx-swap-oob="afterbegin:#signal-items">')


def test_the_kept_lines_are_bounded(memory, rendered_lines, monkeypatch):
    monkeypatch.setattr(fragments, "SIGNAL_LINES", 3)
    sender = EmpathyOS("agent", short_term_memory=memory)
    sent = [sender.send_signal("n", i)["id"] for i in range(6)]
    fragments.render_new_signals(VIEWER, sent[0], {})
    assert list(fragments._signal_lines) == sent[-3:]
