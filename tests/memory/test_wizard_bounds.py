"""What one run of the security wizard may cost: its time, the findings it lists, how
often a wizard id may run, and a result that always fits the cache."""

from __future__ import annotations

from typing import Any

import pytest

from memory import InvalidValue, RateLimited, RedisShortTermMemory
from memory.codec import DEFAULT_MAX_VALUE_BYTES, encode
from memory.wizards import BaseWizard
from memory.wizards import security_analysis_wizard as security_module
from memory.wizards.security_analysis_wizard import (
    DEFAULT_MAX_CODE_BYTES,
    DEFAULT_MAX_FINDINGS,
    SecurityAnalysisWizard,
)

# The paste that once took seconds and returned 22,000 findings: 200 KB of asserts.
ASSERTS = "assert x\n" * (DEFAULT_MAX_CODE_BYTES // 9 - 1)


class Echo(BaseWizard):
    async def analyze(self, context: dict[str, Any]) -> dict[str, Any]:
        return dict(context)


async def test_findings_are_bounded_and_the_summary_counts_them_all() -> None:
    code = "import pickle\n" + "assert x\n" * 150 + "pickle.loads(data)\n"
    result = await SecurityAnalysisWizard(max_findings=20).analyze({"code": code})

    assert result["summary"] == {"total": 152, "high": 0, "medium": 1, "low": 151}
    assert len(result["vulnerabilities"]) == 20
    assert result["omitted"] == 132
    # The most severe are the ones listed, in line order.
    listed = result["vulnerabilities"]
    assert {"B301", "B403"} <= {f["rule_id"] for f in listed}
    assert [f["line"] for f in listed] == sorted(f["line"] for f in listed)


async def test_a_result_under_the_bound_omits_nothing() -> None:
    result = await SecurityAnalysisWizard().analyze({"code": "assert x\n" * 3})

    assert (result["summary"]["total"], result["omitted"], result["stopped"]) == (3, 0, None)


async def test_a_run_past_its_time_stops_and_says_where() -> None:
    result = await SecurityAnalysisWizard(max_seconds=0.05).analyze({"code": ASSERTS})

    stopped = result["stopped"]
    assert stopped["seconds"] == 0.05
    assert 1 <= stopped["line"] < ASSERTS.count("\n")
    assert result["parsed"] and result["error"] is None
    # What was checked before the stop is reported, and nothing from after it.
    assert all(f["line"] <= stopped["line"] for f in result["vulnerabilities"])
    assert result["summary"]["total"] <= stopped["line"]


async def test_the_default_bounds_cover_the_big_paste() -> None:
    result = await SecurityAnalysisWizard().analyze({"code": ASSERTS})

    assert len(result["vulnerabilities"]) == DEFAULT_MAX_FINDINGS
    assert result["summary"]["total"] == result["omitted"] + DEFAULT_MAX_FINDINGS
    assert len(encode(result)) < 100_000


async def test_the_largest_possible_result_fits_the_cache(
    memory: RedisShortTermMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Findings as big as they get: five flagged lines of 300 characters each that JSON
    # writes as six bytes apiece (control characters), as many as may be listed.
    wide = "'" + "\x01" * 300 + "'"
    call = "exec(\n" + " +\n".join([wide] * 5) + ")\n"
    code = call * (DEFAULT_MAX_FINDINGS + 5)
    assert len(code.encode()) <= DEFAULT_MAX_CODE_BYTES
    runs: list[str] = []
    real = security_module.analyze_python
    monkeypatch.setattr(
        security_module, "analyze_python", lambda c, **b: runs.append(c) or real(c, **b)
    )
    wizard = SecurityAnalysisWizard(memory)

    first = await wizard.analyze_with_cache({"code": code})
    again = await wizard.analyze_with_cache({"code": code})

    assert first["omitted"] == 5
    assert len(encode(first)) > DEFAULT_MAX_VALUE_BYTES // 2  # really the worst case
    assert again == first
    assert len(runs) == 1  # the second view came from the cache


async def test_runs_past_the_limit_are_refused_until_the_minute_is_over(
    memory: RedisShortTermMemory,
) -> None:
    wizard = Echo(memory, wizard_id="echo:alice", max_runs_per_minute=3)
    for n in range(3):
        await wizard.analyze_with_cache({"n": n})

    with pytest.raises(RateLimited, match="echo:alice has made 3 runs") as refused:
        await wizard.analyze_with_cache({"n": 3})
    assert 0 < refused.value.retry_after <= 60
    assert wizard.stats["analyses_run"] == 3
    # A cached input costs nothing, even over the limit.
    assert await wizard.analyze_with_cache({"n": 0}) == {"n": 0}
    # Another wizard id (another person) has its own allowance.
    assert await Echo(memory, wizard_id="echo:bob", max_runs_per_minute=3).analyze_with_cache(
        {"n": 3}
    )
    # The window ends (its counter expires), and runs go ahead again.
    memory.client.delete(memory.keys.runs("echo:alice"))
    assert await wizard.analyze_with_cache({"n": 3}) == {"n": 3}


async def test_the_limit_is_shared_by_every_instance_of_a_wizard_id(
    memory: RedisShortTermMemory,
) -> None:
    for n in range(2):
        await Echo(memory, wizard_id="echo:alice", max_runs_per_minute=2).analyze_with_cache(
            {"n": n}
        )
    with pytest.raises(RateLimited):
        await Echo(memory, wizard_id="echo:alice", max_runs_per_minute=2).analyze_with_cache(
            {"n": 2}
        )


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_runs_per_minute", 0),
        ("max_runs_per_minute", 1.5),
        ("max_seconds", 0),
        ("max_seconds", True),
        ("max_findings", 0),
        ("max_findings", "10"),
    ],
)
def test_bounds_must_be_positive(option: str, value: object) -> None:
    with pytest.raises(InvalidValue, match=option):
        SecurityAnalysisWizard(**{option: value})  # type: ignore[arg-type]


async def test_results_under_other_bounds_are_cached_apart(memory: RedisShortTermMemory) -> None:
    context = {"code": "assert x\n" * 5}
    few = SecurityAnalysisWizard(memory, max_findings=2)
    many = SecurityAnalysisWizard(memory, max_findings=10)

    assert few.cache_key(context) != many.cache_key(context)
    assert len((await few.analyze_with_cache(context))["vulnerabilities"]) == 2
    assert len((await many.analyze_with_cache(context))["vulnerabilities"]) == 5
