"""The script registry: every script loads, names only keys the key schema builds, and
no Lua lives outside ``memory/lua``."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import fakeredis
import pytest

from memory import RedisShortTermMemory, scripts
from memory.exceptions import MemoryConnectionError
from memory.keys import PATTERN_SHARDS, SESSION_PARTS, TEAM_PARTS, KeySchema
from memory.tiers import AccessTier, Caller

ROOT = Path(__file__).resolve().parents[2]
# The key that takes the rest of KEYS, and the schema's builders for its members.
CALLER = Caller("a", AccessTier.CONTRIBUTOR)
VARIADIC_BUILDERS = {
    "mailboxes": ("signal", "signal_inbox"),
    "queues": ("queue", "leases", "waiting"),
}


def built_by_schema(name: str) -> bool:
    """The schema, or one of its pattern shards, builds the key ``name``."""
    schema = KeySchema("t:", PATTERN_SHARDS)
    for builder in (schema, schema.pattern_shards[0]):
        member = getattr(builder, name, None)
        if isinstance(member, str) or inspect.ismethod(member):
            return True
    return False


def test_the_library_loads_with_a_function_for_every_script(memory):
    memory.load_library()
    library = memory.library
    assert library is (scripts.CLUSTER_LIBRARY if memory.cluster else scripts.LIBRARY)
    # Under Cluster, every master has it.
    nodes = memory.client.get_primaries() if memory.cluster else [None]
    for node in nodes:
        client = node.redis_connection if node else memory.client
        [loaded] = client.function_list(library=library.name)
        names = {function[1].decode() for function in loaded[5]}
        assert names == {library.function(script) for script in scripts.ALL}
    assert library.version in library.name


def test_the_library_is_loaded_again_when_redis_has_lost_it(memory):
    memory.run_script(
        scripts.PERSIST_COLLABORATION, CALLER, {"collaboration": "c"}, {"state_json": "1"}
    )
    memory.client.function_flush()  # what a restart without persistence does
    memory.run_script(
        scripts.PERSIST_COLLABORATION, CALLER, {"collaboration": "c"}, {"state_json": "2"}
    )
    assert memory.client.get("c") == b"2"


def test_a_redis_without_functions_is_a_clear_error():
    memory = RedisShortTermMemory(
        client=fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(6, 2)))
    )
    with pytest.raises(MemoryConnectionError, match="needs Redis 7.0 or later"):
        memory.run_script(
            scripts.PERSIST_COLLABORATION, CALLER, {"collaboration": "c"}, {"state_json": "1"}
        )


def test_a_script_outside_the_library_is_refused():
    with pytest.raises(LookupError, match="not in empathy_memory_"):
        scripts.FunctionLibrary(scripts.ALL[:1]).function(scripts.STASH)


@pytest.mark.parametrize("script", scripts.ALL, ids=lambda s: s.name)
def test_every_declared_key_is_built_by_the_key_schema(script):
    for name in script.keys:
        if name.startswith("*"):
            assert all(built_by_schema(b) for b in VARIADIC_BUILDERS[name[1:]]), name
        else:
            assert built_by_schema(name) or name in TEAM_PARTS | SESSION_PARTS, name


def test_every_lua_file_is_a_declared_script_or_an_include():
    lua = ROOT / "memory" / "lua"
    declared = {f"{script.name}.lua" for script in scripts.ALL}
    assert {path.name for path in lua.glob("*.lua")} == declared
    used = set()
    for path in lua.rglob("*.lua"):
        used.update(re.findall(r'^[ \t]*--- @include "([a-z_]+)"', path.read_text(), re.MULTILINE))
    assert {path.stem for path in (lua / "includes").glob("*.lua")} == used | {"emit", "clock"}


def test_no_python_file_calls_redis_from_lua():
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("memory", "empathy_web")
        for path in (ROOT / package).rglob("*.py")
        if "redis.call(" in path.read_text()
    ]
    assert offenders == []


def test_it_names_the_keys_and_arguments_a_call_lacks(memory):
    with pytest.raises(TypeError, match="takes keys collaboration; got wrong"):
        memory.run_script(
            scripts.PERSIST_COLLABORATION,
            CALLER,
            {"wrong": "k"},
            {"state_json": "{}"},
        )


def test_it_refuses_a_name_that_would_hide_a_lua_global():
    with pytest.raises(ValueError, match="cannot name a Lua local"):
        scripts.LuaScript("stash", keys=("string",), args=())
