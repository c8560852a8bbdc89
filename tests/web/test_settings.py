"""Settings come from the environment: each test runs manage.py (or Python) in a fresh
process with only the variables it sets, from the repository root."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "dashboard.example",
}
# What a process needs to run at all; nothing the settings read.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def environment(**variables: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.update(variables)
    return env


def run(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=environment(**variables),
        capture_output=True,
        text=True,
        timeout=120,
    )


def manage(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return run("manage.py", *args, **variables)


def loaded_settings(**variables: str) -> dict:
    """The database and channel layer settings a process gets, without connecting."""
    code = (
        "import json; from django.conf import settings; "
        "db = settings.DATABASES['default']; "
        "print(json.dumps({'database': {k: db.get(k) for k in ('ENGINE', 'NAME', 'HOST', 'PORT')}, "
        "'channel_layer': settings.CHANNEL_LAYERS['default']}, default=repr))"
    )
    return json.loads(printed_with_settings(code, **variables))


def printed_with_settings(code: str, **variables: str) -> str:
    """What ``code`` prints in a fresh process with the project's settings module."""
    result = run("-c", code, DJANGO_SETTINGS_MODULE="empathy_web.settings", **variables)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_production_settings_pass_the_deployment_checklist():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_deployment_checklist_catches_debug_in_production():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", **{**PRODUCTION, "DJANGO_DEBUG": "true"}
    )

    assert result.returncode != 0
    assert "security.W018" in result.stdout + result.stderr  # DEBUG is on


def test_it_refuses_to_start_without_a_secret_key():
    for debug in ({}, {"DJANGO_DEBUG": "false"}):
        result = manage("check", **debug, ALLOWED_HOSTS="dashboard.example")

        assert result.returncode != 0
        assert "SECRET_KEY is not set. Set the SECRET_KEY environment variable" in result.stderr


def test_it_refuses_a_debug_flag_that_is_not_a_boolean():
    result = manage("check", **{**PRODUCTION, "DJANGO_DEBUG": "sometimes"})

    assert result.returncode != 0
    assert "DJANGO_DEBUG must be a boolean (true/false), got 'sometimes'" in result.stderr


def test_a_sqlite_database_url_is_used(tmp_path):
    database = tmp_path / "x.db"

    result = manage("migrate", "--noinput", **PRODUCTION, DATABASE_URL=f"sqlite:///{database}")

    assert result.returncode == 0, result.stderr
    assert database.exists()
    with sqlite3.connect(database) as connection:
        groups = connection.execute("SELECT name FROM auth_group ORDER BY name").fetchall()
    assert groups == [("contributor",), ("observer",), ("steward",), ("validator",)]


def test_a_postgres_database_url_selects_postgresql():
    found = loaded_settings(**PRODUCTION, DATABASE_URL="postgres://u:p@127.0.0.1:1/db")

    assert found["database"] == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "db",
        "HOST": "127.0.0.1",
        "PORT": 1,
    }


POSTGRES = {**PRODUCTION, "DATABASE_URL": "postgres://u:p@127.0.0.1:1/db"}


def database_options(**variables: str) -> dict:
    """The database's OPTIONS and CONN_MAX_AGE a process gets, without connecting."""
    code = (
        "import json; from django.conf import settings; db = settings.DATABASES['default']; "
        "print(json.dumps({'options': db.get('OPTIONS', {}), 'max_age': db['CONN_MAX_AGE']}))"
    )
    return json.loads(printed_with_settings(code, **variables))


def test_postgresql_connections_come_from_a_pool_in_each_process():
    assert database_options(**POSTGRES) == {
        "options": {"pool": {"min_size": 2, "max_size": 10, "timeout": 10}}, "max_age": 0,
    }  # fmt: skip
    sized = database_options(**POSTGRES, DB_POOL_SIZE="1", DB_POOL_TIMEOUT="3")
    assert sized["options"] == {"pool": {"min_size": 1, "max_size": 1, "timeout": 3}}


def test_the_pool_can_be_turned_off_for_persistent_connections():
    found = database_options(**POSTGRES, DB_POOL_SIZE="0", DB_CONN_MAX_AGE="60")

    assert found == {"options": {}, "max_age": 60}


def test_sqlite_has_no_pool():
    assert "pool" not in database_options(**PRODUCTION, DB_POOL_SIZE="5")["options"]


def test_it_refuses_a_pool_it_cannot_make():
    refusals = {
        ("DB_CONN_MAX_AGE", "60"): "DB_CONN_MAX_AGE keeps a connection per thread, which the "
        "PostgreSQL pool replaces: unset it, or set DB_POOL_SIZE=0 to do without the pool",
        ("DB_POOL_SIZE", "-1"): "DB_POOL_SIZE must be 0 (no pool) or more, got -1",
        ("DB_POOL_SIZE", "many"): "DB_POOL_SIZE must be an integer, got 'many'",
        ("DB_POOL_TIMEOUT", "0"): "DB_POOL_TIMEOUT must be 1 s or more, got 0",
    }
    for (name, value), message in refusals.items():
        result = manage("check", **POSTGRES, **{name: value})

        assert result.returncode != 0, name
        assert message in result.stderr, result.stderr


def test_without_database_url_it_uses_the_sqlite_file_in_the_repository():
    found = loaded_settings(**PRODUCTION)

    assert found["database"]["ENGINE"] == "django.db.backends.sqlite3"
    assert found["database"]["NAME"] == str(ROOT / "db.sqlite3")


def test_redis_url_puts_the_channel_layer_on_that_redis():
    url = "redis://127.0.0.1:6399/2"

    layer = loaded_settings(**PRODUCTION, REDIS_URL=url)["channel_layer"]

    assert layer["BACKEND"] == "empathy_web.dashboard.layers.ResilientRedisChannelLayer"
    assert [host["address"] for host in layer["CONFIG"]["hosts"]] == [url]
    [host] = layer["CONFIG"]["hosts"]
    assert "Retry" in host["retry"]  # pooled connections recover after a Redis restart
    assert host["socket_timeout"] > 5  # outlasts the layer's blocking pops


def test_without_redis_url_the_channel_layer_is_in_process():
    layer = loaded_settings(**PRODUCTION)["channel_layer"]

    assert layer["BACKEND"] == "channels.layers.InMemoryChannelLayer"


def test_the_asgi_process_keeps_its_startup_heap_out_of_collections():
    code = "import gc, empathy_web.asgi; print(gc.get_freeze_count())"

    result = run("-c", code, **PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 10_000  # Django, the apps, channels: all frozen


def test_no_library_takes_over_the_root_logger_on_import():
    """The MCP SDK calls ``logging.basicConfig`` when its server is built: unless the
    settings configure the root logger first, that puts a rich-text handler at INFO on it,
    and every MCP request then renders a log line."""
    code = (
        "import logging, django; django.setup(); import empathy_web.api.mcp; "
        "root = logging.getLogger(); "
        "print([type(h).__name__ for h in root.handlers], logging.getLevelName(root.level), "
        "logging.getLogger('mcp.server.streamable_http').isEnabledFor(logging.INFO))"
    )
    printed = printed_with_settings(code, **PRODUCTION)
    assert printed.split() == ["['StreamHandler']", "WARNING", "False"]


def test_a_command_prints_no_note_about_formats_nothing_uses():
    result = manage("check", **PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert "Could not load" not in result.stderr, result.stderr
