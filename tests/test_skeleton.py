import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.redis_server import start_redis_server

ROOT = Path(__file__).resolve().parent.parent


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DJANGO_DEBUG"}}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(overrides)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_redis_server_answers_ping_and_set_get(redis_server, redis_client):
    assert redis_client.ping() is True
    assert redis_client.set(b"skeleton:key", b"value") is True
    assert redis_client.get(b"skeleton:key") == b"value"
    assert redis_client.config_get("bind")["bind"] == "127.0.0.1"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


def test_redis_client_starts_from_an_empty_database(redis_client):
    assert redis_client.dbsize() == 0


def test_password_protected_server_and_stop():
    server = start_redis_server(["--requirepass", "s3cret pass"])
    try:
        with (
            redis.Redis.from_url(server.bare_url) as anonymous,
            pytest.raises(redis.AuthenticationError),
        ):
            anonymous.ping()
        with server.client() as client:
            assert client.ping() is True
    finally:
        server.stop()
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"DJANGO_DEBUG": "true"}, id="development"),
        pytest.param({"SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "example.test"}, id="secret-key"),
    ],
)
def test_manage_py_check_is_clean(env):
    result = _manage("check", env=_env(**env))
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("debug", [{}, {"DJANGO_DEBUG": "false"}], ids=["unset", "false"])
def test_settings_refuse_to_start_without_secret_key_when_not_debug(debug):
    result = _manage("check", env=_env(**debug))
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_asgi_application_loads():
    from empathy_web.asgi import application

    assert "http" in application.application_mapping
