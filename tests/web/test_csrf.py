"""Every request that changes something needs the CSRF token: without it, 403 and no
change; with the token the page itself hands out (in its form, or in the header htmx
sends), it goes through."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from empathy_web.library.models import AuditEntry
from memory import RedisShortTermMemory
from tests.web.test_permissions import (
    DONE,
    FORMS,
    MATRIX,
    assert_unchanged,
    named_urls,
    redis_snapshot,
    seed,
)

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"

# Every mutating endpoint (by its MATRIX case) and the page whose form posts to it.
MUTATING = {
    "login": "/accounts/login/",
    "logout": "/",
    **FORMS,
}


class TokenFinder(HTMLParser):
    """The CSRF token of each form (by its action), and the one in <body hx-headers>."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: dict[str, str] = {}
        self.htmx: str | None = None
        self._action: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "body" and attributes.get("hx-headers"):
            self.htmx = json.loads(attributes["hx-headers"])["x-csrftoken"]
        elif tag == "form":
            self._action = attributes.get("action")
        elif tag == "input" and attributes.get("name") == "csrfmiddlewaretoken":
            self.forms[self._action] = attributes["value"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._action = None


@pytest.fixture
def memory(memory: RedisShortTermMemory) -> RedisShortTermMemory:
    """The web's memory, seeded."""
    seed(memory)
    return memory


@pytest.fixture
def member(make_user: Callable[..., User], settings) -> User:
    """A user who logs in with a password (hashed quickly: this is a test)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user("observer")
    user.set_password(PASSWORD)
    user.save()
    return user


def _browser(client_for: Callable[..., Client], case: str) -> Client:
    """A browser that enforces CSRF like a real one, a steward's unless it is to log in."""
    return client_for("anonymous" if case == "login" else "steward", enforce_csrf_checks=True)


def _data(case: str, member: User) -> dict[str, str]:
    if case == "login":
        return {"username": member.username, "password": PASSWORD}
    return MATRIX[case].data


def _logged_in(client: Client) -> bool:
    return client.get(reverse("overview")).status_code == 200


def test_every_post_only_url_is_checked(memory, client_for):
    """A URL that refuses GET is an action: it must be in MUTATING."""
    client = client_for("steward")
    post_only = set()
    for name in named_urls():
        rule = next(r for r in MATRIX.values() if r.url == name)
        response = client.get(rule.path)
        if response.status_code == 405:
            assert "POST" in response["Allow"]
            post_only.add(name)
    checked = {MATRIX[case].url for case in MUTATING}
    assert sorted(post_only) == sorted(checked - {"login"})


def test_every_action_in_the_matrix_is_checked():
    actions = {case for case, rule in MATRIX.items() if rule.post and DONE in rule.post}
    assert sorted(actions - MUTATING.keys()) == []


@pytest.mark.parametrize("token", ["none", "forged"])
@pytest.mark.parametrize("case", sorted(MUTATING))
def test_a_post_without_the_token_is_refused(memory, client_for, member, case, token):
    client = _browser(client_for, case)
    assert client.get(MUTATING[case]).status_code == 200  # the browser has its CSRF cookie
    before = redis_snapshot(memory.client)
    data = dict(_data(case, member))
    if token == "forged":
        data["csrfmiddlewaretoken"] = "x" * 64

    response = client.post(MATRIX[case].path, data)

    assert response.status_code == 403
    assert_unchanged(before, redis_snapshot(memory.client))
    assert AuditEntry.objects.count() == 0
    assert _logged_in(client) == (case != "login")


@pytest.mark.parametrize("sent_as", ["form field", "htmx header"])
@pytest.mark.parametrize("case", sorted(MUTATING))
def test_the_same_post_with_the_pages_token_is_accepted(memory, client_for, member, case, sent_as):
    client = _browser(client_for, case)
    rule = MATRIX[case]
    page = client.get(MUTATING[case])
    assert page.status_code == 200
    tokens = TokenFinder(page.content.decode())
    assert rule.path in tokens.forms, f"{MUTATING[case]} has no form posting to {rule.path}"

    if sent_as == "form field":
        response = client.post(
            rule.path, {**_data(case, member), "csrfmiddlewaretoken": tokens.forms[rule.path]}
        )
    else:
        assert tokens.htmx
        response = client.post(rule.path, _data(case, member), HTTP_X_CSRFTOKEN=tokens.htmx)

    assert response.status_code == 302
    if case == "login":
        assert response["Location"] == reverse("overview")
        assert _logged_in(client)
    elif case == "logout":
        assert response["Location"] == rule.then
        assert not _logged_in(client)
    else:
        assert response["Location"] == rule.then
        assert rule.effect(memory)
        assert AuditEntry.objects.get().action == rule.audit[0]
