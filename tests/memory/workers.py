"""Worker processes for the concurrency tests: ``python -m tests.memory.workers MODE ...``.

Each worker talks to the test over a line protocol. It prints ``ready`` once it is
connected, then waits for a line on stdin before it starts, so that every worker of a
test begins at the same moment. What it did is printed as one line per fact, flushed at
once, and always *after* the Redis call it reports has returned:

``drain``     claims tasks until the team's queues are empty and no lease is outstanding.
              ``done <task_id>`` per completed task, ``lost <task_id> <Exception>`` per
              refused completion. With ``--hold-after N`` it completes N tasks, claims one
              more, prints ``holding <task_id> <token>`` and hangs (to be killed).
``claim-one`` claims one task, prints ``claimed <task_id> <token> <deadline> <attempts>``,
              waits for another stdin line, then completes it and prints ``completed`` or
              ``refused <Exception>`` (exit code 3 for ``LeaseLost``).
``validate``  decides every pattern ``<prefix><i>`` once, printing ``won <id> <decision>``
              or ``lost <id>`` (``AlreadyDecided``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from memory import (
    AccessTier,
    AgentCoordinator,
    AlreadyDecided,
    EmpathyOS,
    LeaseLost,
    RedisShortTermMemory,
)

EXIT_LEASE_LOST = 3
EVENTS_MAXLEN = 1_000_000
POLL_SECONDS = 0.02


def say(*parts: object) -> None:
    print(*parts, flush=True)


def wait_for_go() -> None:
    say("ready")
    if not sys.stdin.readline():
        raise SystemExit("stdin closed before the start signal")


def connect(url: str) -> RedisShortTermMemory:
    return RedisShortTermMemory(url=url, events_maxlen=EVENTS_MAXLEN)


def drain(args: argparse.Namespace) -> int:
    memory = connect(args.url)
    coordinator = AgentCoordinator(
        memory, args.team, lease_seconds=args.lease, max_attempts=args.max_attempts
    )
    coordinator.register_agent(args.agent, args.types)
    wait_for_go()
    types = list(args.types)
    # Workers start at different types so that they do not all hit one queue first.
    offset = args.index % len(types)
    types = types[offset:] + types[:offset]
    completed = 0
    deadline = time.monotonic() + args.max_seconds
    while time.monotonic() < deadline:
        task = None
        for task_type in types:
            task = coordinator.claim_task(args.agent, task_type)
            if task is not None:
                break
        if task is None:
            counts = coordinator.counts()
            if counts["pending"] == 0 and counts["claimed"] == 0:
                say("exit", completed)
                return 0
            # Someone holds a lease: it is either completed soon or runs out and comes
            # back to a queue, where a later claim (which reaps expired leases) finds it.
            time.sleep(POLL_SECONDS)
            continue
        if args.hold_after is not None and completed >= args.hold_after:
            say("holding", task.task_id, task.fencing_token)
            while True:
                time.sleep(60)
        if args.work_ms:
            time.sleep(args.work_ms / 1000)
        try:
            coordinator.complete_task(
                task.task_id,
                {"agent": args.agent, "task_id": task.task_id},
                fencing_token=task.fencing_token,
            )
        except LeaseLost as exc:
            say("lost", task.task_id, type(exc).__name__)
            continue
        completed += 1
        say("done", task.task_id)
    say("timeout", completed)
    return 1


def claim_one(args: argparse.Namespace) -> int:
    memory = connect(args.url)
    coordinator = AgentCoordinator(
        memory, args.team, lease_seconds=args.lease, max_attempts=args.max_attempts
    )
    wait_for_go()
    task = coordinator.claim_task(args.agent, args.types[0])
    if task is None:
        say("empty")
        return 1
    say("claimed", task.task_id, task.fencing_token, task.lease_expires_ms, task.attempts)
    if not sys.stdin.readline():
        raise SystemExit("stdin closed before the finish signal")
    try:
        # No fencing token passed: the coordinator completes with the one it remembers.
        coordinator.complete_task(task.task_id, {"by": args.agent})
    except LeaseLost as exc:
        say("refused", type(exc).__name__)
        return EXIT_LEASE_LOST
    say("completed")
    return 0


def validate(args: argparse.Namespace) -> int:
    memory = connect(args.url)
    agent = EmpathyOS(args.agent, short_term_memory=memory, access_tier=AccessTier.VALIDATOR)
    indexes = list(range(args.count))
    if args.order == "reverse":
        indexes.reverse()
    elif args.order == "shuffle":
        random.Random(args.seed).shuffle(indexes)
    wait_for_go()
    for i in indexes:
        pattern_id = f"{args.prefix}{i}"
        promote = (i + args.index) % 3 != 0
        try:
            if promote:
                agent.promote_pattern(pattern_id)
            else:
                agent.reject_pattern(pattern_id, f"{args.agent} rejects {pattern_id}")
        except AlreadyDecided:
            say("lost", pattern_id)
            continue
        say("won", pattern_id, "promoted" if promote else "rejected")
    say("exit")
    return 0


def main(argv: list[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(prog="tests.memory.workers")
    parser.add_argument("mode", choices=["drain", "claim-one", "validate"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--team", default="team")
    parser.add_argument("--types", nargs="+", default=["work"])
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument("--work-ms", type=float, default=0.0)
    parser.add_argument("--hold-after", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=50.0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--prefix", default="pattern-")
    parser.add_argument("--order", choices=["forward", "reverse", "shuffle"], default="forward")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run = {"drain": drain, "claim-one": claim_one, "validate": validate}[args.mode]
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
