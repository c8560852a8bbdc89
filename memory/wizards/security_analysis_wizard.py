"""``SecurityAnalysisWizard``: bandit's security checks on Python source, as a wizard.

The analysis runs bandit in process on the source text: no file is written or read.
"""

from __future__ import annotations

import ast
import asyncio
import io
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import bandit
from bandit.core import config as b_config
from bandit.core import meta_ast as b_meta_ast
from bandit.core import metrics as b_metrics
from bandit.core import node_visitor as b_node_visitor
from bandit.core import test_set as b_test_set

from ..exceptions import InvalidValue
from ..redis_memory import RedisShortTermMemory
from ..tiers import AccessTier
from .base import SHARED_SESSION_ID, BaseWizard

SUPPORTED_LANGUAGES = ("python",)
DEFAULT_MAX_CODE_BYTES = 200 * 1024
# A run stops here, and says so: bandit's checks are per node, and 200 KB of source can
# hold 20,000 findings and take seconds.
DEFAULT_MAX_SECONDS = 5.0
# A result lists at most this many findings (the most severe); the summary counts all.
# With each finding's code excerpt bounded below, a result fits working memory's 1 MiB
# value limit, so every result is cached.
DEFAULT_MAX_FINDINGS = 100
SEVERITIES = ("high", "medium", "low")
_RANK = {name: len(SEVERITIES) - n for n, name in enumerate(SEVERITIES)}

# The visitor derives a module name from this path; "./" keeps that from touching the
# file system or logging a warning. Nothing is read from it: the source is in memory.
_VIRTUAL_FILENAME = "./submitted_code.py"
_EXCERPT_MAX_LINES = 5
_EXCERPT_MAX_LINE_CHARS = 300
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# PEP 263's encoding declaration.
_CODING_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")

# Building a bandit test set assigns each plugin's configuration to attributes of the
# plugin functions, which are module globals. One analysis at a time keeps another
# thread's test set from changing them mid-scan; analyses are CPU-bound under the GIL
# anyway, so little parallelism is lost.
_bandit_lock = threading.Lock()


class SecurityAnalysisWizard(BaseWizard):
    """Finds security problems in Python source with bandit's checks.

    ``analyze({"code": source, "language": "python"})`` (``language`` defaults to
    python) returns a JSON-ready dict:

    - ``vulnerabilities``: one dict per finding, ordered by line: ``rule_id`` (bandit's
      test id, e.g. ``B602``), ``rule`` (its name), ``title``, ``severity`` and
      ``confidence`` (``"high"``, ``"medium"`` or ``"low"``), ``line``, ``line_range``,
      ``column``, ``code`` (the flagged lines) and ``cwe`` (an int, or None).
    - ``summary``: ``total`` and a count for each severity, over every finding.
    - ``omitted``: how many findings are counted but not listed. At most
      ``max_findings`` (100 by default) are listed: the most severe, then the most
      confident, then the first.
    - ``stopped``: None, or ``{"seconds": limit, "line": n}`` when the scan reached its
      ``max_seconds`` (5 by default) while checking line ``n``; findings from there on
      are missing.
    - ``parsed``: False when the source does not parse; ``error`` then says why, with
      its ``line`` (and ``column``), and there are no findings.
    - ``language``, ``lines`` (lines of source) and ``analyzer`` (bandit's version).

    Another language raises ``ValueError`` naming the supported ones; source over
    ``max_code_bytes`` (200 KB by default) as UTF-8 raises ``ValueError`` too.
    ``# nosec`` comments in the source are ignored: the code under analysis is input,
    and its own comments should not switch its checks off.

    The scan runs in a worker thread, so ``analyze`` does not block the event loop.
    """

    version = "2"

    def __init__(
        self,
        short_term_memory: RedisShortTermMemory | None = None,
        *,
        wizard_id: str | None = None,
        access_tier: AccessTier = AccessTier.CONTRIBUTOR,
        shared_session_id: str = SHARED_SESSION_ID,
        max_code_bytes: int = DEFAULT_MAX_CODE_BYTES,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        max_findings: int = DEFAULT_MAX_FINDINGS,
        max_runs_per_minute: int | None = None,
    ) -> None:
        super().__init__(
            short_term_memory,
            wizard_id=wizard_id,
            access_tier=access_tier,
            shared_session_id=shared_session_id,
            max_runs_per_minute=max_runs_per_minute,
        )
        self.max_code_bytes = _positive(max_code_bytes, "max_code_bytes", int)
        self.max_seconds = float(_positive(max_seconds, "max_seconds", int | float))
        self.max_findings = _positive(max_findings, "max_findings", int)

    def prepare_context(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """``{"code": str, "language": "python"}``, checked; other keys are dropped."""
        context = super().prepare_context(context)
        if "code" not in context:
            raise InvalidValue('context needs "code": the Python source to analyse')
        code = context["code"]
        if not isinstance(code, str):
            raise InvalidValue(f"code must be a string, not {type(code).__name__}")
        language = context.get("language", "python")
        if not isinstance(language, str) or language.strip().lower() not in SUPPORTED_LANGUAGES:
            raise InvalidValue(
                f"{type(self).__name__} cannot analyse language {language!r}; "
                f"supported languages: {', '.join(SUPPORTED_LANGUAGES)}"
            )
        size = len(code.encode("utf-8", "surrogatepass"))
        if size > self.max_code_bytes:
            raise InvalidValue(
                f"code is {size} bytes; the limit is {self.max_code_bytes} bytes "
                "(max_code_bytes). Split the source and analyse it in parts."
            )
        return {"code": code, "language": language.strip().lower()}

    def cache_identity(self) -> dict[str, Any]:
        """The wizard, its result version, bandit's version and the bounds: an upgrade
        of bandit may find other things, so its results are cached apart."""
        bounds = {"max_seconds": self.max_seconds, "max_findings": self.max_findings}
        return {**super().cache_identity(), "bandit": bandit.__version__, **bounds}

    async def analyze(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """Scan ``context["code"]`` with bandit; see the class docstring for the result."""
        prepared = self.prepare_context(context)
        return await asyncio.to_thread(
            analyze_python,
            prepared["code"],
            max_seconds=self.max_seconds,
            max_findings=self.max_findings,
        )


def _positive(value: Any, name: str, kind: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        raise InvalidValue(f"{name} must be a positive number, not {value!r}")
    return value


class _OutOfTime(Exception):
    def __init__(self, line: int | None) -> None:
        self.line = line


class _TimedVisitor(b_node_visitor.BanditNodeVisitor):
    """Bandit's visitor, stopping at a deadline: every node passes through
    ``pre_visit``, so no check runs long past it."""

    def __init__(self, *args: Any, deadline: float) -> None:
        super().__init__(*args)
        self.deadline = deadline
        self.line: int | None = None  # the line being checked

    def pre_visit(self, node: ast.AST) -> bool:
        self.line = getattr(node, "lineno", self.line)
        if time.monotonic() > self.deadline:
            raise _OutOfTime(self.line)
        return super().pre_visit(node)


def analyze_python(
    code: str,
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    max_findings: int = DEFAULT_MAX_FINDINGS,
) -> dict[str, Any]:
    """Bandit's findings on Python ``code``, as the wizard reports them (blocking)."""
    lines = _LINE_BREAK.split(code)
    line_count = len(lines) - (lines[-1] == "")
    try:
        data = code.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = code.count("\n", 0, exc.start) + 1
        return _unparsed(
            "the source holds a character that is not valid Unicode (a lone surrogate)",
            line,
            None,
            line_count,
        )
    # Parse first, from the same bytes bandit parses, to report the error's position;
    # bandit itself only records that a file was skipped.
    try:
        ast.parse(data)
    except SyntaxError as exc:
        return _unparsed(exc.msg, _error_line(exc, code, lines), exc.offset, line_count)
    except (ValueError, RecursionError, MemoryError) as exc:
        message = "the source is nested too deeply to parse"
        if isinstance(exc, ValueError):
            message = str(exc)
        return _unparsed(message, None, None, line_count)

    try:
        issues, stopped = _scan(data, max_seconds)
    except RecursionError:
        # The parser accepts deeper nesting than bandit's recursive visitor.
        return _result(
            [],
            line_count,
            error={
                "kind": "analysis_failed",
                "message": "the source is nested too deeply for the analyser",
                "line": None,
                "column": None,
            },
        )
    findings = [_finding(issue, lines) for issue in issues]
    summary = _summary(findings)
    if len(findings) > max_findings:
        findings.sort(key=_most_severe_first)
        del findings[max_findings:]
    findings.sort(key=lambda f: (f["line"], f["column"], f["rule_id"]))
    return _result(findings, line_count, summary=summary, stopped=stopped)


def _scan(data: bytes, max_seconds: float) -> tuple[list[Any], dict[str, Any] | None]:
    """Bandit's issues in ``data``, and where the scan stopped if it ran out of time."""
    with _bandit_lock:
        testset = b_test_set.BanditTestSet(b_config.BanditConfig(), profile={})
        visitor = _TimedVisitor(
            _VIRTUAL_FILENAME,
            io.BytesIO(data),
            b_meta_ast.BanditMetaAst(),
            testset,
            False,  # debug
            {},  # nosec lines: none are honoured
            b_metrics.Metrics(),
            deadline=time.monotonic() + max_seconds,
        )
        stopped = None
        try:
            visitor.process(data)
        except _OutOfTime as exc:
            stopped = {"seconds": max_seconds, "line": exc.line}
        return list(visitor.tester.results), stopped


def _most_severe_first(finding: dict[str, Any]) -> tuple[int, int, int]:
    rank = _RANK.get
    return (-rank(finding["severity"], 0), -rank(finding["confidence"], 0), finding["line"])


def _finding(issue: Any, lines: list[str]) -> dict[str, Any]:
    line_range = sorted({n for n in (issue.linerange or [issue.lineno]) if n and n > 0})
    if not line_range:
        line_range = [max(issue.lineno or 1, 1)]
    first = line_range[0]
    last = min(line_range[-1], first + _EXCERPT_MAX_LINES - 1)
    excerpt = "\n".join(line[:_EXCERPT_MAX_LINE_CHARS].rstrip() for line in lines[first - 1 : last])
    cwe = getattr(issue.cwe, "id", 0) or None
    return {
        "rule_id": issue.test_id,
        "rule": issue.test,
        "title": issue.text,
        "severity": str(issue.severity).lower(),
        "confidence": str(issue.confidence).lower(),
        "line": int(issue.lineno or first),
        "line_range": line_range,
        "column": max(int(issue.col_offset), 0),
        "code": excerpt,
        "cwe": cwe,
    }


def _summary(findings: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"total": len(findings), **dict.fromkeys(SEVERITIES, 0)}
    for finding in findings:
        if finding["severity"] in counts:
            counts[finding["severity"]] += 1
    return counts


def _result(
    findings: list[dict[str, Any]],
    line_count: int,
    error: dict[str, Any] | None = None,
    summary: dict[str, int] | None = None,
    stopped: dict[str, Any] | None = None,
) -> dict[str, Any]:
    summary = summary or _summary(findings)
    return {
        "language": "python",
        "parsed": error is None or error["kind"] != "syntax_error",
        "error": error,
        "vulnerabilities": findings,
        "summary": summary,
        "omitted": summary["total"] - len(findings),
        "stopped": stopped,
        "lines": line_count,
        "analyzer": f"bandit {bandit.__version__}",
    }


def _error_line(exc: SyntaxError, code: str, lines: list[str]) -> int | None:
    if exc.lineno is not None and exc.lineno > 0:
        return exc.lineno
    # Errors found before tokenising carry no line (null bytes) or line 0 (a bad
    # encoding declaration); point at the culprit instead.
    if "\0" in code:
        return code.count("\n", 0, code.index("\0")) + 1
    for number, line in enumerate(lines[:2], start=1):
        if _CODING_COOKIE.match(line):
            return number
    return None


def _unparsed(
    message: str, line: int | None, column: int | None, line_count: int
) -> dict[str, Any]:
    if column is not None and column < 1:
        column = None
    error = {"kind": "syntax_error", "message": message, "line": line, "column": column}
    return _result([], line_count, error)
