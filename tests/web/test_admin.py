"""The Django admin: stewards only, whatever the staff flag says; the audit log is
read-only for everyone."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from empathy_web.library.models import AuditEntry, PromotedPattern

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    "/admin/",
    "/admin/auth/user/",
    "/admin/auth/group/",
    "/admin/library/promotedpattern/",
    "/admin/library/auditentry/",
]


@pytest.fixture
def steward(client_for: Callable[..., Client]) -> Client:
    return client_for("steward", username="stella")


@pytest.fixture
def entry(make_user: Callable[..., User]) -> AuditEntry:
    actor = make_user("steward", username="sam")
    return AuditEntry.objects.create(
        actor=actor,
        actor_name="sam",
        tier="STEWARD",
        action="session.delete",
        target="incident-42",
        details={"reason": "stale"},
    )


def cells(body: str, field: str) -> list[str]:
    """The values of one column of an admin change list."""
    found = re.findall(rf'<t[dh] class="field-{field}[^"]*">(.*?)</t[dh]>', body, re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in found]


# stewards ------------------------------------------------------------------------------


def test_a_steward_gets_the_admin_with_users_patterns_and_audit_log(steward):
    response = steward.get("/admin/")

    assert response.status_code == 200
    body = response.content.decode()
    for changelist in ADMIN_PAGES[1:]:
        assert f'href="{changelist}"' in body


def test_the_user_list_shows_each_user_s_tier(steward, make_user):
    for tier in ("observer", "contributor", "validator"):
        make_user(tier, username=f"{tier}-person")
    make_user(None, username="nobody")
    User.objects.create_superuser("root")

    response = steward.get("/admin/auth/user/?o=1")  # by username

    assert response.status_code == 200
    body = response.content.decode()
    assert dict(zip(cells(body, "username"), cells(body, "tier"), strict=True)) == {
        "contributor-person": "contributor",
        "nobody": "-",
        "observer-person": "observer",
        "root": "steward",
        "stella": "steward",
        "validator-person": "validator",
    }


def test_the_pattern_library_is_in_the_admin(steward):
    PromotedPattern.objects.create(
        pattern_id="sql-params",
        name="Parameterised SQL",
        pattern_type="security",
        confidence=0.9,
        agent_id="security-agent",
    )

    response = steward.get("/admin/library/promotedpattern/")

    assert response.status_code == 200
    body = response.content.decode()
    assert cells(body, "name") == ["Parameterised SQL"]
    assert cells(body, "agent_id") == ["security-agent"]


def test_a_superuser_without_groups_gets_the_admin(client_for):
    client = client_for(User.objects.create_superuser("root"))

    assert client.get("/admin/").status_code == 200


# the audit log is read-only ------------------------------------------------------------


def test_the_audit_log_lists_entries_without_an_add_button(steward, entry):
    response = steward.get("/admin/library/auditentry/")

    assert response.status_code == 200
    body = response.content.decode()
    assert cells(body, "action") == ["session.delete"]
    assert cells(body, "actor_name") == ["sam"]
    assert cells(body, "target") == ["incident-42"]
    assert "/admin/library/auditentry/add/" not in body
    assert "delete_selected" not in body  # no bulk delete action


def test_an_audit_entry_can_be_viewed_but_not_changed(steward, entry):
    page = f"/admin/library/auditentry/{entry.pk}/change/"

    response = steward.get(page)

    assert response.status_code == 200
    body = response.content.decode()
    assert "View audit entry" in body
    assert 'name="_save"' not in body
    assert f"/admin/library/auditentry/{entry.pk}/delete/" not in body
    assert steward.post(page, {"action": "tampered", "target": "x"}).status_code == 403
    entry.refresh_from_db()
    assert (entry.action, entry.target) == ("session.delete", "incident-42")


def test_audit_entries_cannot_be_added_or_deleted(steward, entry):
    delete_page = f"/admin/library/auditentry/{entry.pk}/delete/"

    assert steward.get("/admin/library/auditentry/add/").status_code == 403
    assert steward.post("/admin/library/auditentry/add/", {"action": "x"}).status_code == 403
    assert steward.get(delete_page).status_code == 403
    assert steward.post(delete_page, {"post": "yes"}).status_code == 403
    steward.post(
        "/admin/library/auditentry/",
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    assert AuditEntry.objects.count() == 1


# everyone else -------------------------------------------------------------------------


@pytest.mark.parametrize("tier", ["observer", "contributor", "validator"])
@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_non_stewards_are_refused_even_when_flagged_staff(entry, make_user, client_for, tier, path):
    user = make_user(tier, username=f"{tier}-person")
    User.objects.filter(pk=user.pk).update(is_staff=True)  # behind the signals' back
    client = client_for(User.objects.get(pk=user.pk))

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


def test_a_refused_user_is_told_so_on_the_admin_login_page(make_user, client_for):
    user = make_user("validator", username="vera")
    User.objects.filter(pk=user.pk).update(is_staff=True)
    client = client_for(User.objects.get(pk=user.pk))

    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == 200
    assert "You are authenticated as vera, but are not authorized" in response.content.decode()


def test_a_refused_user_changes_nothing_through_the_admin(entry, make_user, client_for):
    user = make_user("validator", username="vera")
    User.objects.filter(pk=user.pk).update(is_staff=True)
    client = client_for(User.objects.get(pk=user.pk))

    response = client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": "vera",
            "is_superuser": "on",
            "groups": [Group.objects.get(name="steward").pk],
        },
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["validator"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_anonymous_visitors_are_sent_to_the_admin_login(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"
