"""Teams as the boundary: a person's tier in each team (memberships), an agent's teams
(its credential), and the one ``TeamScope`` both come down to."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from empathy_web.accounts.models import Membership
from empathy_web.accounts.teams import TeamScope, scope_of_credential, scope_of_user
from empathy_web.library.models import AgentCredential
from memory import AccessTier

pytestmark = pytest.mark.django_db

OB, CO, VA, ST = (
    AccessTier.OBSERVER,
    AccessTier.CONTRIBUTOR,
    AccessTier.VALIDATOR,
    AccessTier.STEWARD,
)


def test_a_scope_gives_each_team_its_tier_and_every_other_team_none():
    scope = TeamScope(tiers={"alpha": VA, "beta": OB})

    assert (scope.tier_in("alpha"), scope.tier_in("beta"), scope.tier_in("gamma")) == (VA, OB, None)
    assert scope.includes("beta") and not scope.includes("gamma")
    assert scope.describe() == "alpha, beta"
    assert TeamScope().describe() == "no team" and not TeamScope().includes("alpha")


def test_every_team_at_a_tier_and_a_higher_tier_in_one_of_them():
    scope = TeamScope(every=OB, tiers={"alpha": VA, "beta": OB})

    assert (scope.tier_in("alpha"), scope.tier_in("beta"), scope.tier_in("any")) == (VA, OB, OB)
    assert scope.describe() == "all teams"


def test_scopes_that_see_the_same_share_a_key():
    assert TeamScope(tiers={"a": OB, "b": VA}).key == TeamScope(tiers={"b": VA, "a": OB}).key
    assert TeamScope(tiers={"a": OB}).key != TeamScope(tiers={"a": VA}).key
    assert TeamScope(tiers={"a": OB}).key != TeamScope(every=OB).key


def test_a_person_has_the_tier_of_each_membership_and_no_other_team(make_user):
    person = make_user("observer", "dana")
    Membership.objects.create(user=person, team="alpha", tier=VA.name)
    Membership.objects.create(user=person, team="beta", tier=OB.name)

    scope = scope_of_user(person)

    assert (scope.tier_in("alpha"), scope.tier_in("beta"), scope.tier_in("gamma")) == (VA, OB, None)


def test_org_wide_stewards_and_superusers_are_in_every_team(make_user, django_user_model):
    steward = make_user("steward", "sam")
    root = django_user_model.objects.create_superuser("root", password="x")

    for person in (steward, root):
        assert scope_of_user(person) == TeamScope(every=ST)


def test_nobody_without_a_tier_is_in_any_team(make_user):
    outsider = make_user(None, "olga")
    Membership.objects.create(user=outsider, team="alpha", tier=VA.name)
    former = make_user("validator", "fred")
    Membership.objects.create(user=former, team="alpha", tier=VA.name)
    former.is_active = False
    former.save()

    for person in (AnonymousUser(), outsider, former):
        assert scope_of_user(person) == TeamScope()


def test_a_credential_is_in_its_teams_at_its_tier():
    listed = AgentCredential(agent_id="a", tier=CO.name, teams=["alpha", "beta"])
    every = AgentCredential(agent_id="b", tier=OB.name, all_teams=True)

    assert scope_of_credential(listed) == TeamScope(tiers={"alpha": CO, "beta": CO})
    assert scope_of_credential(every) == TeamScope(every=OB)
    assert listed.may_act_in("beta") and not listed.may_act_in("gamma")
    assert every.may_act_in("gamma")


def test_a_membership_takes_a_team_id_as_the_library_does_and_one_per_team(make_user):
    person = make_user("observer", "mia")
    bad = Membership(user=person, team="{slot}", tier=OB.name)
    with pytest.raises(ValidationError, match="team"):
        bad.full_clean()

    Membership.objects.create(user=person, team="alpha", tier=OB.name)
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=person, team="alpha", tier=VA.name)
