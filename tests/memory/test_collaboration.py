from __future__ import annotations

from memory import AccessTier, EmpathyOS


def test_state_survives_a_new_instance(make_memory):
    agent = EmpathyOS("critical_agent", short_term_memory=make_memory())
    agent.collaboration_state.trust_level = 0.8
    agent.collaboration_state.successful_interventions = 10
    agent.persist_collaboration_state()

    restarted = EmpathyOS("critical_agent", short_term_memory=make_memory())
    assert restarted.collaboration_state.trust_level == 0.8
    assert restarted.collaboration_state.successful_interventions == 10


def test_restore_reloads_and_reports_absence(memory):
    agent = EmpathyOS("a", short_term_memory=memory)
    assert agent.restore_collaboration_state() is False
    agent.collaboration_state.trust_level = 0.9
    agent.persist_collaboration_state()
    agent.collaboration_state.trust_level = 0.1
    assert agent.restore_collaboration_state() is True
    assert agent.collaboration_state.trust_level == 0.9
    other = EmpathyOS("b", short_term_memory=memory, access_tier=AccessTier.OBSERVER)
    assert other.collaboration_state.trust_level == 0.5
