"""Teams as the boundary: a person's tier in each team (memberships), an agent's teams
(its credential), and the one ``TeamAccess`` both come down to."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from empathy_web.accounts.models import Membership
from empathy_web.accounts.teams import (
    TeamAccess,
    access_of_credential,
    access_of_user,
    viewer_of,
)
from empathy_web.library.models import AgentCredential
from memory import AccessTier

pytestmark = pytest.mark.django_db

OB, CO, VA, ST = (
    AccessTier.OBSERVER,
    AccessTier.CONTRIBUTOR,
    AccessTier.VALIDATOR,
    AccessTier.STEWARD,
)


def test_an_access_gives_each_team_its_tier_and_every_other_team_none():
    access = TeamAccess(tiers={"alpha": VA, "beta": OB})

    assert (access.tier_in("alpha"), access.tier_in("beta"), access.tier_in("gamma")) == (
        VA,
        OB,
        None,
    )
    assert access.includes("beta") and not access.includes("gamma")
    assert access.describe() == "alpha, beta"
    assert TeamAccess().describe() == "no team" and not TeamAccess().includes("alpha")


def test_every_team_at_a_tier_and_a_higher_tier_in_one_of_them():
    access = TeamAccess(every=OB, tiers={"alpha": VA, "beta": OB})

    assert (access.tier_in("alpha"), access.tier_in("beta"), access.tier_in("any")) == (VA, OB, OB)
    assert access.describe() == "all teams"


def test_accesses_that_see_the_same_share_a_key():
    assert TeamAccess(tiers={"a": OB, "b": VA}).key == TeamAccess(tiers={"b": VA, "a": OB}).key
    assert TeamAccess(tiers={"a": OB}).key != TeamAccess(tiers={"a": VA}).key
    assert TeamAccess(tiers={"a": OB}).key != TeamAccess(every=OB).key


def test_a_person_has_the_tier_of_each_membership_and_no_other_team(make_user):
    person = make_user("observer", "dana", teams={})
    Membership.objects.create(user=person, team="alpha", tier=VA.name)
    Membership.objects.create(user=person, team="beta", tier=OB.name)

    access = access_of_user(person)

    assert (access.tier_in("alpha"), access.tier_in("beta"), access.tier_in("gamma")) == (
        VA,
        OB,
        None,
    )


def test_org_wide_stewards_and_superusers_are_in_every_team(make_user, django_user_model):
    steward = make_user("steward", "sam")
    root = django_user_model.objects.create_superuser("root", password="x")

    for person in (steward, root):
        assert access_of_user(person) == TeamAccess(every=ST)


def test_a_membership_alone_puts_an_active_person_in_a_team(make_user):
    member = make_user(None, "olga")  # in no tier group: nothing org-wide but reading
    Membership.objects.create(user=member, team="alpha", tier=VA.name)
    former = make_user("validator", "fred", teams={})
    Membership.objects.create(user=former, team="alpha", tier=VA.name)
    former.is_active = False
    former.save()

    assert access_of_user(member) == TeamAccess(tiers={"alpha": VA})
    viewer = viewer_of(member)
    assert (viewer.org, viewer.tier, viewer.tier_for("alpha"), viewer.tier_for(None)) == (
        None, OB, VA, None,
    )  # fmt: skip
    for person in (AnonymousUser(), former):
        assert access_of_user(person) == TeamAccess()
        assert viewer_of(person) is None


def test_a_membership_of_every_team_gives_its_tier_in_each(make_user):
    person = make_user(None, "eve", teams={"*": "observer", "alpha": "validator"})

    viewer = viewer_of(person)

    assert viewer.teams is None  # no listing is restricted
    assert (viewer.tier_for("alpha"), viewer.tier_for("zeta"), viewer.tier_for(None)) == (
        VA, OB, None,
    )  # fmt: skip


def test_a_credential_is_in_its_teams_at_its_tier():
    listed = AgentCredential(agent_id="a", tier=CO.name, teams=["alpha", "beta"])
    every = AgentCredential(agent_id="b", tier=OB.name, all_teams=True)

    assert access_of_credential(listed) == TeamAccess(tiers={"alpha": CO, "beta": CO})
    assert access_of_credential(every) == TeamAccess(every=OB)
    assert listed.may_act_in("beta") and not listed.may_act_in("gamma")
    assert every.may_act_in("gamma")


def test_a_membership_takes_a_team_id_as_the_library_does_and_one_per_team(make_user):
    person = make_user("observer", "mia", teams={})
    bad = Membership(user=person, team="{slot}", tier=OB.name)
    with pytest.raises(ValidationError, match="team"):
        bad.full_clean()

    Membership.objects.create(user=person, team="alpha", tier=OB.name)
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=person, team="alpha", tier=VA.name)


def test_shared_renderings_are_keyed_by_tiers_and_teams():
    from empathy_web.accounts.teams import Viewer
    from empathy_web.dashboard.fragments import feed_view, panels_view

    def viewer(name: str, **tiers: AccessTier) -> Viewer:
        return Viewer(name, OB, None, TeamAccess(tiers=tiers))

    def keys(one: Viewer) -> tuple[object, object]:
        return panels_view(["task-board"], {}, one)[0], feed_view(one, None, {})[0]

    ann, amy = viewer("ann", alpha=OB, beta=VA), viewer("amy", beta=VA, alpha=OB)
    assert keys(ann) == keys(amy)  # the same teams at the same tiers: one rendering
    for other in (viewer("bob", alpha=OB), viewer("cy", alpha=OB, beta=OB)):
        panels, feed = keys(other)
        assert panels != keys(ann)[0] and (feed != keys(ann)[1]) is (other.teams != ann.teams)
