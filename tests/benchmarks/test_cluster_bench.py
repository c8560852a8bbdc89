"""How evenly a 3-master Redis Cluster shares the library's work.

100 agents in 10 teams take turns, round after round: each stashes a value, signals a
teammate, receives its signals, claims and completes a task (its team's lead adds them)
and stages a pattern. Every master's ``INFO commandstats`` is reset first; the table is
each master's share of the commands the mix sent (connection and cluster bookkeeping
left out), and which of the library's hash tags it holds. The target: no master serves
more than half. Each master's share of the CPU Redis used meanwhile is printed beside
it (commands inside functions count as commands, as ``commandstats`` counts them).

Run with ``make bench`` (or ``pytest -m benchmark -s tests/benchmarks/test_cluster_bench.py``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from memory import AgentCoordinator, AgentTask, EmpathyOS, RedisShortTermMemory, StagedPattern
from tests.redis_server import ClusterOfServers, start_cluster

pytestmark = pytest.mark.benchmark

AGENTS, TEAMS, ROUNDS = 100, 10, 5
# Commands that are the client's bookkeeping, not the mix's work.
BOOKKEEPING = ("cluster", "info", "config", "command", "hello", "ping", "function", "client")


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterOfServers]:
    servers = start_cluster(3)
    try:
        yield servers
    finally:
        servers.stop()


def _calls(node) -> Counter[str]:
    stats = node.redis_connection.info("commandstats")
    calls: Counter[str] = Counter()
    for name, figures in stats.items():
        command = name.removeprefix("cmdstat_")
        if command.split("|")[0] not in BOOKKEEPING:
            calls[command] = figures["calls"]
    return calls


def _cpu(node) -> float:
    stats = node.redis_connection.info("cpu")
    return stats["used_cpu_user"] + stats["used_cpu_sys"]


def test_no_master_serves_more_than_half_of_the_mix(cluster):
    memory = RedisShortTermMemory(url=cluster.url)
    agents = [EmpathyOS(f"agent-{n:03}", short_term_memory=memory) for n in range(AGENTS)]
    teams = [AgentCoordinator(memory, f"team-{t}") for t in range(TEAMS)]
    memory.load_library()
    for node in memory.client.get_primaries():
        node.redis_connection.config_resetstat()
    cpu_before = {node.name: _cpu(node) for node in memory.client.get_primaries()}
    started = time.perf_counter()
    ops = 0
    for round_ in range(ROUNDS):
        for n, agent in enumerate(agents):
            team = teams[n % TEAMS]
            mate = agents[(n + TEAMS) % AGENTS]
            team.add_task(AgentTask(f"r{round_}-a{n}", "review", "d", 5))
            agent.stash("notes", {"round": round_})
            agent.send_signal("progress", {"round": round_}, target_agent=mate.user_id)
            agent.receive_signals()
            claimed = team.claim_task(agent.user_id, "review")
            assert claimed is not None
            team.complete_task(claimed.task_id, {"ok": True})
            agent.stage_pattern(
                StagedPattern(f"p-{round_}-{n}", agent.user_id, "fix", "name", "desc")
            )
            ops += 7
    elapsed = time.perf_counter() - started
    primaries = memory.client.get_primaries()
    calls = {node.name: _calls(node) for node in primaries}
    cpu = {node.name: _cpu(node) - cpu_before[node.name] for node in primaries}
    total = sum(sum(c.values()) for c in calls.values())
    tags = {
        "{signals}": memory.keys.signals_recent,
        **{
            shard.tag.removeprefix(memory.keys.prefix): shard.patterns_staged
            for shard in memory.keys.pattern_shards
        },
        "teams index": memory.keys.teams,
        "wm:agents index": memory.keys.working_agents,
    }
    print(f"\n{ops} operations in {elapsed:.1f} s ({ops / elapsed:.0f}/s), {total} commands")
    print(f"{'master':<18} {'share':>6} {'CPU':>6}  {'commands':>8}  top commands; holds")
    shares = {}
    for node in primaries:
        served = sum(calls[node.name].values())
        shares[node.name] = served / total
        top = ", ".join(f"{c} {k}" for c, k in calls[node.name].most_common(4))
        held = [name for name, key in tags.items() if memory.client.get_node_from_key(key) == node]
        cpu_share = cpu[node.name] / sum(cpu.values())
        print(
            f"{node.name:<18} {shares[node.name]:>6.1%} {cpu_share:>6.1%}  {served:>8}  {top}; {held}"
        )
    worst = max(shares.values())
    print(f"largest share {worst:.1%}: {'PASS' if worst <= 0.5 else 'FAIL'} (target: at most 50%)")
    memory.close()
