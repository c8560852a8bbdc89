"""``manage.py simulate_agents``: a simulated code-review team, in its own process."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from empathy_web.dashboard.agents_memory import get_memory
from memory.simulation import SimulatedTeam


class Command(BaseCommand):
    help = "Run a simulated team of agents against the configured short-term memory."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--pace", type=float, default=1.0, help="pause scale; smaller is busier"
        )
        parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
        parser.add_argument("--team", default="code_review_team")

    def handle(self, *args: Any, **options: Any) -> None:
        memory = get_memory()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        team = SimulatedTeam(memory, team_id=options["team"], pace=options["pace"])
        team.start()
        self.stdout.write(f"Simulated team {options['team']} running on {memory.address}.")
        try:
            stop.wait(options["seconds"])
        except KeyboardInterrupt:
            pass
        finally:
            team.stop()
        self.stdout.write("Simulated team stopped.")
