"""Wizards: the base wizard's cache, sharing and staging, and the security wizard."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from memory import (
    AccessDenied,
    AccessTier,
    EmpathyOS,
    InvalidValue,
    RedisShortTermMemory,
    StagedPattern,
    TTLStrategy,
    UnserialisableValue,
)
from memory.tiers import Caller
from memory.wizards import SHARED_SESSION_ID, BaseWizard
from memory.wizards import security_analysis_wizard as security_module
from memory.wizards.security_analysis_wizard import (
    DEFAULT_MAX_CODE_BYTES,
    SecurityAnalysisWizard,
)
from tests.memory.conftest import MakeMemory

READER = Caller("reader", AccessTier.OBSERVER)  # the reads below read as an observer


class CountingWizard(BaseWizard):
    """A wizard whose analysis counts its runs and returns non-JSON types on purpose."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runs = 0

    async def analyze(self, context: dict[str, Any]) -> dict[str, Any]:
        self.runs += 1
        return {"echo": context, "pair": (1, 2)}


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The source of every bandit scan the security wizard runs during the test."""
    seen: list[str] = []
    real = security_module.analyze_python

    def spy(code: str, **bounds: Any) -> dict[str, Any]:
        seen.append(code)
        return real(code, **bounds)

    monkeypatch.setattr(security_module, "analyze_python", spy)
    return seen


async def analyse(code: str) -> dict[str, Any]:
    return await SecurityAnalysisWizard().analyze({"code": textwrap.dedent(code)})


def only(result: dict[str, Any], rule_id: str) -> dict[str, Any]:
    [finding] = [f for f in result["vulnerabilities"] if f["rule_id"] == rule_id]
    return finding


# Findings on real vulnerable code -------------------------------------------------------


async def test_subprocess_with_shell_true() -> None:
    result = await analyse(
        """
        import subprocess

        def run(user_input):
            return subprocess.call("ls " + user_input, shell=True)
        """
    )

    finding = only(result, "B602")
    assert finding["rule"] == "subprocess_popen_with_shell_equals_true"
    assert "shell=True" in finding["title"]
    assert finding["severity"] == "high"
    assert finding["confidence"] == "high"
    assert finding["line"] == 5
    assert finding["code"] == '    return subprocess.call("ls " + user_input, shell=True)'
    assert finding["cwe"] == 78
    # bandit also flags the import itself, at low severity.
    assert only(result, "B404")["severity"] == "low"
    assert result["summary"] == {"total": 2, "high": 1, "medium": 0, "low": 1}


async def test_yaml_load() -> None:
    result = await analyse(
        """
        import yaml

        def read_config(text):
            return yaml.load(text)
        """
    )

    finding = only(result, "B506")
    assert finding["rule"] == "yaml_load"
    assert "yaml.safe_load" in finding["title"]
    assert (finding["severity"], finding["confidence"]) == ("medium", "high")
    assert finding["line"] == 5
    assert finding["cwe"] == 20
    assert result["summary"] == {"total": 1, "high": 0, "medium": 1, "low": 0}


async def test_hard_coded_passwords() -> None:
    result = await analyse(
        """
        DATABASE_PASSWORD = "hunter2"

        def connect(db):
            return db.connect(user="admin", password="s3cr3t")

        def login(password="letmein"):
            return password
        """
    )

    by_rule = {f["rule_id"]: f for f in result["vulnerabilities"]}
    assert set(by_rule) == {"B105", "B106", "B107"}
    assert by_rule["B105"]["line"] == 2
    assert "hunter2" in by_rule["B105"]["title"]
    assert by_rule["B106"]["line"] == 5
    assert "s3cr3t" in by_rule["B106"]["title"]
    assert by_rule["B107"]["line"] == 7
    assert {f["cwe"] for f in by_rule.values()} == {259}
    assert {f["severity"] for f in by_rule.values()} == {"low"}


async def test_pickle_loads() -> None:
    result = await analyse(
        """
        import pickle

        def load_session(blob):
            return pickle.loads(blob)
        """
    )

    finding = only(result, "B301")
    assert "deserialize untrusted data" in finding["title"]
    assert finding["severity"] == "medium"
    assert finding["line"] == 5
    assert finding["code"] == "    return pickle.loads(blob)"
    assert finding["cwe"] == 502
    assert only(result, "B403")["line"] == 2


async def test_sql_built_with_string_formatting() -> None:
    result = await analyse(
        """
        def find_user(cursor, name, user_id):
            cursor.execute("SELECT * FROM users WHERE name = '%s'" % name)
            cursor.execute(f"DELETE FROM users WHERE id = {user_id}")
            cursor.execute("UPDATE users SET name = '{}'".format(name))
            cursor.execute("SELECT * FROM users WHERE id = " + user_id)
        """
    )

    findings = result["vulnerabilities"]
    assert [f["rule_id"] for f in findings] == ["B608"] * 4
    assert [f["line"] for f in findings] == [3, 4, 5, 6]
    assert all("SQL injection" in f["title"] for f in findings)
    assert all(f["cwe"] == 89 and f["severity"] == "medium" for f in findings)
    assert result["summary"] == {"total": 4, "high": 0, "medium": 4, "low": 0}


async def test_multi_line_finding_keeps_its_lines() -> None:
    result = await analyse(
        """
        import subprocess
        subprocess.run(
            "rm -rf " + path,
            shell=True,
        )
        """
    )

    finding = only(result, "B602")
    # bandit reports the line of the shell=True argument, within the call's range.
    assert finding["line"] == 5
    assert finding["line_range"] == [3, 4, 5, 6]
    assert finding["code"].splitlines() == [
        "subprocess.run(",
        '    "rm -rf " + path,',
        "    shell=True,",
        ")",
    ]


async def test_nosec_comments_do_not_hide_findings() -> None:
    result = await analyse(
        """
        import yaml
        data = yaml.load(text)  # nosec
        """
    )

    assert only(result, "B506")["line"] == 3


async def test_clean_code_has_no_findings() -> None:
    result = await analyse(
        '''
        """Parameterised queries and safe parsing: nothing for bandit to flag."""
        import hashlib
        import json
        import secrets
        import sqlite3

        import yaml


        def find_user(conn: sqlite3.Connection, name: str) -> list[tuple]:
            return conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchall()


        def read_config(text: str) -> dict:
            return yaml.safe_load(text)


        def token() -> str:
            return secrets.token_urlsafe(32)


        def fingerprint(payload: dict) -> str:
            return hashlib.sha256(json.dumps(payload).encode()).hexdigest()
        '''
    )

    assert result["vulnerabilities"] == []
    assert result["summary"] == {"total": 0, "high": 0, "medium": 0, "low": 0}
    assert result["parsed"] is True
    assert result["error"] is None
    assert result["language"] == "python"
    assert result["analyzer"].startswith("bandit ")
    assert result["lines"] == 24  # the dedented snippet starts with a blank line


async def test_result_is_plain_json() -> None:
    result = await analyse("import pickle\npickle.loads(b'')\n")

    assert json.loads(json.dumps(result)) == result


# Bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "line", "message"),
    [
        ("def broken(:\n    pass\n", 1, "invalid syntax"),
        ("x = 1\nif x\n    y = 2\n", 2, "expected ':'"),
        ("x = 1\ny = (\n", 2, "'(' was never closed"),
        ("x = 1\n\n\x00\n", 3, "null bytes"),
        ("x = 1\n  y = 2\n", 2, "unexpected indent"),
        ("# -*- coding: no-such-codec -*-\nx = 1\n", 1, "unknown encoding"),
        ("x = 1\ny = '\ud800'\n", 2, "not valid Unicode"),
    ],
    ids=["syntax", "missing-colon", "unclosed", "null-byte", "indent", "encoding", "surrogate"],
)
async def test_source_that_does_not_parse_says_so(code: str, line: int, message: str) -> None:
    result = await SecurityAnalysisWizard().analyze({"code": code, "language": "python"})

    assert result["parsed"] is False
    assert result["error"]["kind"] == "syntax_error"
    assert result["error"]["line"] == line
    assert message in result["error"]["message"]
    assert result["vulnerabilities"] == []
    assert result["summary"]["total"] == 0


async def test_nesting_too_deep_for_the_parser_is_a_result_not_a_crash() -> None:
    wizard = SecurityAnalysisWizard(max_code_bytes=1_000_000)
    result = await wizard.analyze({"code": "x = a" + " + a" * 100_000})

    assert result["parsed"] is False
    assert "nested too deeply" in result["error"]["message"]


async def test_nesting_too_deep_for_bandit_is_reported() -> None:
    # The parser accepts this, but bandit's recursive visitor cannot walk it.
    result = await SecurityAnalysisWizard().analyze({"code": "x = a" + " + a" * 2_000})

    assert result["parsed"] is True
    assert result["error"]["kind"] == "analysis_failed"
    assert result["vulnerabilities"] == []


@pytest.mark.parametrize("language", ["javascript", "java", "", None, 3])
async def test_other_languages_are_refused(language: object) -> None:
    wizard = SecurityAnalysisWizard()

    with pytest.raises(ValueError, match="supported languages: python"):
        await wizard.analyze({"code": "x = 1", "language": language})
    with pytest.raises(ValueError, match="supported languages: python"):
        await wizard.analyze_with_cache({"code": "x = 1", "language": language})


async def test_language_is_case_insensitive_and_defaults_to_python() -> None:
    wizard = SecurityAnalysisWizard()

    assert (await wizard.analyze({"code": "x = 1", "language": " Python "}))["parsed"]
    assert (await wizard.analyze({"code": "x = 1"}))["parsed"]


async def test_code_over_the_size_limit_is_refused(scans: list[str]) -> None:
    wizard = SecurityAnalysisWizard()
    at_limit = "#" * (DEFAULT_MAX_CODE_BYTES - 1) + "\n"
    assert DEFAULT_MAX_CODE_BYTES == 200 * 1024

    assert (await wizard.analyze({"code": at_limit}))["parsed"]
    with pytest.raises(ValueError, match=r"code is 204801 bytes; the limit is 204800 bytes"):
        await wizard.analyze({"code": at_limit + "x"})
    with pytest.raises(ValueError, match="max_code_bytes"):
        await wizard.analyze_with_cache({"code": at_limit + "x"})
    assert len(scans) == 1


async def test_size_limit_is_configurable_and_counts_utf8_bytes() -> None:
    wizard = SecurityAnalysisWizard(max_code_bytes=10)

    assert (await wizard.analyze({"code": "x = 'éé'"}))["parsed"]  # 10 bytes
    with pytest.raises(ValueError, match="code is 12 bytes; the limit is 10 bytes"):
        await wizard.analyze({"code": "x = 'ééé'"})


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "100"])
def test_size_limit_must_be_a_positive_integer(limit: object) -> None:
    with pytest.raises(InvalidValue, match="max_code_bytes"):
        SecurityAnalysisWizard(max_code_bytes=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"language": "python"}, 'needs "code"'),
        ({"code": b"x = 1"}, "code must be a string, not bytes"),
        ({"code": None}, "code must be a string, not NoneType"),
        ("x = 1", "context must be a mapping, not str"),
    ],
)
async def test_malformed_context_is_refused(context: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await SecurityAnalysisWizard().analyze_with_cache(context)


# Caching --------------------------------------------------------------------------------


async def test_second_analysis_of_the_same_code_is_a_cache_hit(
    memory: RedisShortTermMemory, scans: list[str]
) -> None:
    wizard = SecurityAnalysisWizard(short_term_memory=memory)
    context = {"code": "import pickle\npickle.loads(data)\n", "language": "python"}

    first = await wizard.analyze_with_cache(context)
    second = await wizard.analyze_with_cache(context)

    assert second == first
    assert only(second, "B301")["line"] == 2
    assert len(scans) == 1
    assert wizard.stats == {"analyses_run": 1, "cache_hits": 1, "cache_misses": 1}


async def test_cache_is_shared_by_every_instance_of_the_wizard(
    make_memory: MakeMemory, scans: list[str]
) -> None:
    context = {"code": "import yaml\nyaml.load(s)\n", "language": "python"}
    one = SecurityAnalysisWizard(short_term_memory=make_memory())
    other = SecurityAnalysisWizard(short_term_memory=make_memory())

    first = await one.analyze_with_cache(context)
    # Normalised input: the language's case and keys the analysis ignores share a key.
    again = await other.analyze_with_cache({**context, "language": "PYTHON", "note": "x"})

    assert again == first
    assert len(scans) == 1
    assert other.stats == {"analyses_run": 0, "cache_hits": 1, "cache_misses": 0}


async def test_different_code_misses(memory: RedisShortTermMemory, scans: list[str]) -> None:
    wizard = SecurityAnalysisWizard(short_term_memory=memory)

    a = await wizard.analyze_with_cache({"code": "x = 1\n"})
    b = await wizard.analyze_with_cache({"code": "x = 2\n"})

    assert a == b  # both clean
    assert len(scans) == 2
    assert wizard.stats == {"analyses_run": 2, "cache_hits": 0, "cache_misses": 2}


async def test_cache_entry_lives_in_the_wizards_working_memory_with_the_working_ttl(
    make_memory: MakeMemory,
) -> None:
    memory = make_memory(ttls={TTLStrategy.WORKING_RESULTS: 90})
    wizard = SecurityAnalysisWizard(short_term_memory=memory)
    context = {"code": "x = 1\n", "language": "python"}

    result = await wizard.analyze_with_cache(context)

    key = wizard.cache_key(context)
    assert key.startswith("analysis:") and len(key) == len("analysis:") + 64
    entry = memory.client.pttl(memory.keys.working("security_analysis_wizard", key))
    assert 85_000 < entry <= 90_000
    # Any agent can read it, as any agent's working memory.
    reader = EmpathyOS("reader", short_term_memory=memory, access_tier=AccessTier.OBSERVER)
    assert reader.retrieve(key, agent_id="security_analysis_wizard") == result


async def test_expired_cache_entry_is_analysed_again(
    make_memory: MakeMemory, scans: list[str]
) -> None:
    memory = make_memory()
    wizard = SecurityAnalysisWizard(short_term_memory=memory)
    context = {"code": "x = 1\n"}
    await wizard.analyze_with_cache(context)

    memory.client.delete(memory.keys.working(wizard.wizard_id, wizard.cache_key(context)))
    await wizard.analyze_with_cache(context)

    assert len(scans) == 2


async def test_cache_key_depends_on_the_wizard_and_bandit(
    memory: RedisShortTermMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    wizard = SecurityAnalysisWizard(short_term_memory=memory)
    context = {"code": "x = 1\n"}
    key = wizard.cache_key(context)

    monkeypatch.setattr(security_module.bandit, "__version__", "0.0-other")
    assert wizard.cache_key(context) != key
    monkeypatch.undo()
    assert CountingWizard().cache_key(context) != key
    assert wizard.cache_key({"code": "x = 1\n", "language": "python"}) == key


async def test_syntax_error_results_are_cached_too(
    memory: RedisShortTermMemory, scans: list[str]
) -> None:
    wizard = SecurityAnalysisWizard(short_term_memory=memory)

    first = await wizard.analyze_with_cache({"code": "def (:"})
    second = await wizard.analyze_with_cache({"code": "def (:"})

    assert first == second and first["parsed"] is False
    assert len(scans) == 1


async def test_base_cache_round_trips_results_through_json(memory: RedisShortTermMemory) -> None:
    wizard = CountingWizard(short_term_memory=memory)

    first = await wizard.analyze_with_cache({"b": 2, "a": [1]})
    second = await wizard.analyze_with_cache({"a": [1], "b": 2})

    assert first == second == {"echo": {"a": [1], "b": 2}, "pair": [1, 2]}
    assert wizard.runs == 1


async def test_result_too_large_to_store_is_returned_uncached(
    make_memory: MakeMemory, caplog: pytest.LogCaptureFixture
) -> None:
    wizard = CountingWizard(short_term_memory=make_memory(max_value_bytes=200))
    context = {"blob": "x" * 300}

    with caplog.at_level(logging.WARNING, logger="memory"):
        first = await wizard.analyze_with_cache(context)
        second = await wizard.analyze_with_cache(context)

    assert first == second
    assert wizard.runs == 2
    assert "result not cached" in caplog.text


async def test_unhashable_context_is_refused(memory: RedisShortTermMemory) -> None:
    wizard = CountingWizard(short_term_memory=memory)

    with pytest.raises(UnserialisableValue, match="context cannot be hashed"):
        await wizard.analyze_with_cache({"when": object()})
    assert wizard.runs == 0


async def test_analysis_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    real = security_module.analyze_python

    def spy(code: str, **bounds: Any) -> dict[str, Any]:
        threads.append(threading.get_ident())
        return real(code, **bounds)

    monkeypatch.setattr(security_module, "analyze_python", spy)
    await SecurityAnalysisWizard().analyze({"code": "x = 1"})

    assert threads and threads[0] != threading.get_ident()


# The base wizard as an agent ------------------------------------------------------------


def test_wizard_is_an_agent_with_its_own_id_and_tier(memory: RedisShortTermMemory) -> None:
    wizard = SecurityAnalysisWizard(short_term_memory=memory)

    assert wizard.wizard_id == "security_analysis_wizard"
    assert wizard.access_tier is AccessTier.CONTRIBUTOR
    assert wizard.agent is not None
    assert wizard.agent.user_id == "security_analysis_wizard"
    assert BaseWizard(memory).wizard_id == "base_wizard"
    named = BaseWizard(memory, wizard_id="sec-2", access_tier=AccessTier.VALIDATOR)
    assert (named.wizard_id, named.access_tier) == ("sec-2", AccessTier.VALIDATOR)
    with pytest.raises(InvalidValue):
        BaseWizard(memory, wizard_id="bad{id}")


async def test_base_wizard_has_no_analysis_of_its_own() -> None:
    with pytest.raises(NotImplementedError):
        await BaseWizard().analyze_with_cache({})


def test_shared_context_is_readable_by_other_wizards(make_memory: MakeMemory) -> None:
    security = SecurityAnalysisWizard(short_term_memory=make_memory())
    reviewer = BaseWizard(make_memory(), wizard_id="review_wizard")

    security.share_context("security_findings", [{"rule_id": "B602", "line": 4}])

    assert reviewer.get_shared_context("security_findings") == [{"rule_id": "B602", "line": 4}]
    assert security.get_shared_context("security_findings") == [{"rule_id": "B602", "line": 4}]
    assert reviewer.get_shared_context("nothing_here") is None


def test_shared_context_lives_in_the_wizards_team_session(memory: RedisShortTermMemory) -> None:
    first = BaseWizard(memory, wizard_id="first")
    second = BaseWizard(memory, wizard_id="second")

    first.share_context("a", 1)
    second.share_context("a", 2)  # the last write wins

    from memory.sessions import get_session

    info = get_session(memory, READER, SHARED_SESSION_ID)
    assert info is not None
    assert info.participants == ["first", "second"]
    assert 0 < info.ttl_ms <= TTLStrategy.SESSION * 1000
    assert first.get_shared_context("a") == 2
    shares = [e for e in memory.read_events() if e.type == "session.shared"]
    assert [e.actor for e in shares] == ["first", "second"]


def test_shared_context_survives_the_session_expiring(memory: RedisShortTermMemory) -> None:
    wizard = BaseWizard(memory, wizard_id="first")
    wizard.share_context("a", 1)
    for key in memory.client.scan_iter(f"{memory.keys.prefix}{{sess:*"):
        memory.client.delete(key)

    assert wizard.get_shared_context("a") is None
    wizard.share_context("a", 2)
    assert wizard.get_shared_context("a") == 2


def test_a_separate_shared_session_is_private_to_its_wizards(memory: RedisShortTermMemory) -> None:
    team_a = BaseWizard(memory, wizard_id="a", shared_session_id="team_a")
    default = BaseWizard(memory, wizard_id="b")

    team_a.share_context("k", "only team a")

    assert default.get_shared_context("k") is None
    assert BaseWizard(memory, shared_session_id="team_a").get_shared_context("k") == "only team a"


def test_staged_pattern_reaches_the_validator_queue(memory: RedisShortTermMemory) -> None:
    wizard = SecurityAnalysisWizard(short_term_memory=memory)

    staged = wizard.stage_discovered_pattern(
        pattern_id="sec_001",
        pattern_type="security",
        name="SQL Injection Prevention",
        description="Always use parameterized queries",
        confidence=0.9,
        code='cursor.execute("SELECT * FROM t WHERE id = ?", (user_id,))',
        context={"rule_id": "B608"},
    )

    assert isinstance(staged, StagedPattern)
    assert staged.agent_id == "security_analysis_wizard"
    assert staged.staged_at is not None
    validator = EmpathyOS("senior", short_term_memory=memory, access_tier=AccessTier.VALIDATOR)
    [queued] = validator.get_staged_patterns()
    assert queued.pattern_id == "sec_001"
    assert queued.agent_id == "security_analysis_wizard"
    assert queued.context == {"rule_id": "B608"}
    assert queued.confidence == 0.9
    assert validator.promote_pattern("sec_001").name == "SQL Injection Prevention"


def test_staging_defaults(memory: RedisShortTermMemory) -> None:
    staged = BaseWizard(memory).stage_discovered_pattern("p1", "style", "Name", "Description", 0.5)

    assert staged is not None
    assert (staged.code, staged.context) == ("", {})


def test_observer_wizard_reads_but_does_not_write(memory: RedisShortTermMemory) -> None:
    contributor = BaseWizard(memory, wizard_id="writer")
    contributor.share_context("k", "v")
    observer = BaseWizard(memory, wizard_id="watcher", access_tier=AccessTier.OBSERVER)

    assert observer.get_shared_context("k") == "v"
    with pytest.raises(AccessDenied):
        observer.share_context("k", "mine")
    with pytest.raises(AccessDenied):
        observer.stage_discovered_pattern("p1", "security", "Name", "Description", 0.5)


async def test_observer_wizard_uses_the_cache_but_does_not_fill_it(
    make_memory: MakeMemory, scans: list[str]
) -> None:
    memory = make_memory()
    observer = SecurityAnalysisWizard(memory, access_tier=AccessTier.OBSERVER)
    context = {"code": "x = 1\n"}

    await observer.analyze_with_cache(context)
    await observer.analyze_with_cache(context)
    assert len(scans) == 2  # nothing was stored

    await SecurityAnalysisWizard(make_memory()).analyze_with_cache(context)
    await observer.analyze_with_cache(context)
    assert len(scans) == 3
    assert observer.stats == {"analyses_run": 2, "cache_hits": 1, "cache_misses": 2}


# Without memory -------------------------------------------------------------------------


@pytest.fixture
def no_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if anything falls back to connecting on its own."""

    def refuse(**options: Any) -> RedisShortTermMemory:
        raise AssertionError("a wizard without memory must not connect to Redis")

    monkeypatch.setattr("memory.empathy_os.get_redis_memory", refuse)
    monkeypatch.setattr("memory.redis_memory.get_redis_memory", refuse)


async def test_without_memory_the_wizard_still_analyses(no_redis: None, scans: list[str]) -> None:
    wizard = SecurityAnalysisWizard()
    context = {"code": "import pickle\npickle.loads(x)\n", "language": "python"}

    first = await wizard.analyze_with_cache(context)
    second = await wizard.analyze_with_cache(context)

    assert first == second
    assert only(first, "B301")["line"] == 2
    assert len(scans) == 2  # no cache: the analysis runs each time
    assert wizard.stats == {"analyses_run": 2, "cache_hits": 0, "cache_misses": 0}
    assert wizard.has_memory is False
    assert wizard.agent is None


def test_without_memory_sharing_and_staging_do_nothing(no_redis: None) -> None:
    wizard = SecurityAnalysisWizard()

    assert wizard.share_context("security_findings", []) is None
    assert wizard.get_shared_context("security_findings") is None
    assert wizard.stage_discovered_pattern("sec_001", "security", "N", "D", 0.9) is None
    # The pattern is still checked, so a mistake shows before a memory is attached.
    with pytest.raises(InvalidValue, match="confidence"):
        wizard.stage_discovered_pattern("sec_001", "security", "N", "D", 1.5)


# Packaging ------------------------------------------------------------------------------


def test_imports_stay_light() -> None:
    """``memory.wizards`` does not load bandit; neither module loads Django."""
    check = (
        "import sys\n"
        "import memory.wizards\n"
        "assert 'bandit' not in sys.modules\n"
        "import memory.wizards.security_analysis_wizard\n"
        "assert 'bandit' in sys.modules\n"
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60)
