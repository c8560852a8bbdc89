"""The stack the live browser tests run against: a live ASGI server with its own
redis-server (the channel layer and the agents' memory) and the real bridge process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from django.conf import settings
from django.contrib.auth.models import Group, User
from playwright.sync_api import Page, expect

from empathy_web.accounts.models import Membership
from empathy_web.accounts.teams import EVERY_TEAM
from memory import RedisShortTermMemory
from tests.e2e.live_server_process import LiveServerTestCase
from tests.redis_server import start_redis_server


class LiveStack(LiveServerTestCase):
    """Each test starts on an empty Redis with ``users`` ((name, tier) pairs, password
    ``<name>-password-1``; "tierless": in no tier group), each a member of every team at
    their tier unless ``memberships`` names theirs (name -> team -> tier), and
    ``self.memory`` on that Redis."""

    serve_static = True
    users: tuple[tuple[str, str], ...] = ()
    memberships: dict[str, dict[str, str]] = {}  # noqa: RUF012 (read only)

    @classmethod
    def setUpClass(cls) -> None:
        cls.redis = start_redis_server([])
        os.environ["REDIS_URL"] = cls.redis.url
        super().setUpClass()
        cls.bridge_log = tempfile.NamedTemporaryFile("w+", suffix=".log")  # noqa: SIM115
        cls.bridge = subprocess.Popen(
            [sys.executable, "manage.py", "run_bridge", "--coalesce", "0.05"],
            cwd=settings.BASE_DIR,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
            stdout=cls.bridge_log,
            stderr=subprocess.STDOUT,
        )
        # A bridge that is still starting would begin after events a test has already
        # caused, and hint nothing about them: wait until it has chosen where it reads.
        deadline = time.monotonic() + 60
        while "bridge reading events after" not in Path(cls.bridge_log.name).read_text():
            assert cls.bridge.poll() is None, Path(cls.bridge_log.name).read_text()
            assert time.monotonic() < deadline, "the bridge did not start within 60 s"
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.bridge.send_signal(signal.SIGTERM)
        assert cls.bridge.wait(10) == 0  # a clean stop on SIGTERM
        cls.bridge_log.close()
        super().tearDownClass()
        os.environ.pop("REDIS_URL", None)
        cls.redis.stop()

    def setUp(self) -> None:
        redis.Redis.from_url(self.redis.url).flushall()
        self.memory = RedisShortTermMemory(url=self.redis.url)
        for name, tier in self.users:
            user = User.objects.create_user(name, password=f"{name}-password-1")
            if tier != "tierless":
                user.groups.add(Group.objects.get_or_create(name=tier)[0])
            # By default a member of every team at that tier.
            default = {} if tier in ("steward", "tierless") else {EVERY_TEAM: tier}
            for team, team_tier in self.memberships.get(name, default).items():
                Membership.objects.create(user=user, team=team, tier=team_tier.upper())

    def tearDown(self) -> None:
        self.memory.close()

    def log_in(self, page: Page, name: str, path: str) -> None:
        """Log ``page`` in as ``name``, open ``path`` and wait until it is live."""
        page.goto(f"{self.live_server_url}/accounts/login/")
        page.fill("#id_username", name)
        page.fill("#id_password", f"{name}-password-1")
        page.click("button[type=submit]")
        page.goto(f"{self.live_server_url}{path}")
        expect(page.locator("#live-status")).to_have_text("live")
