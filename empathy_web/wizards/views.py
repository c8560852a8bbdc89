"""The security wizard page: ``SecurityAnalysisWizard`` on Python source that a person
pastes or uploads, with its findings marked on the code and one click to stage any of
them as a pattern for validation.

The wizard acts for the person: its agent id is ``security_analysis_wizard:<username>``
and its tier is theirs. Every write it makes goes through the library's tier checks and
into the event stream, so the live dashboards show its runs as that agent's activity,
and a validator sees whose run a staged pattern came from.

Each run is kept in the wizard's working memory under ``run:<id>`` (the id is the hash
of the wizard's cache key, so the same code is the same run) for the WORKING_RESULTS
TTL, an hour by default. Its page, ``/wizards/security/runs/<id>/``, shows it again, and
findings are staged from it: the server stages what the wizard found, never what the
browser describes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import textwrap
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import push_url

from empathy_web.accounts.teams import caller_for, tier_required
from empathy_web.accounts.tiers import WIZARD_ID_PREFIX
from empathy_web.dashboard.agents_memory import get_memory
from empathy_web.library.audit import record
from memory import InvalidValue, RateLimited, StateConflict
from memory import patterns as staged_patterns
from memory.tiers import WRITE, Caller
from memory.wizards.security_analysis_wizard import SecurityAnalysisWizard

from .forms import SecurityWizardForm

logger = logging.getLogger("empathy_web")

TEMPLATE = "wizards/security.html"
RUN_KEY_PREFIX = "run:"
RUN_ID = re.compile(r"[0-9a-f]{64}")
RUN_FIELDS = ("code", "language", "filename")  # what a kept run holds
SEVERITY_RANK = {"high": 3, "medium": 2, "low": 1}
# bandit's confidence in a finding, as the staged pattern's confidence.
CONFIDENCE = {"high": 0.9, "medium": 0.6, "low": 0.3}
# The code listing shows every line of code up to this many, else the lines around
# what it marks, LISTING_CONTEXT on each side.
LISTING_ALL_LINES = 500
LISTING_CONTEXT = 3
EXPIRED = "This run is no longer kept (runs are kept for an hour). Run the wizard again."

run_action = require_http_methods(["GET", "POST"])


def is_index(raw: str) -> bool:
    """A finding's index in a URL: ASCII digits, not many of them."""
    return raw.isascii() and raw.isdigit() and len(raw) < 10


def wizard_for(request: HttpRequest) -> SecurityAnalysisWizard:
    """The security wizard acting for the person, with their tier. It is their own
    agent, in no team: its runs and the patterns it stages are org-wide, so it takes
    their org-wide tier (403 below contributor)."""
    caller = caller_for(request).acting_in(None, WRITE, "Running the security wizard")
    return SecurityAnalysisWizard(
        get_memory(),
        wizard_id=WIZARD_ID_PREFIX + caller.user_id,
        access_tier=caller.tier,
        max_seconds=settings.WIZARD_MAX_SECONDS,
        max_runs_per_minute=settings.WIZARD_RUNS_PER_MINUTE,
    )


def pattern_id_for(finding: dict[str, Any]) -> str:
    """The same finding on the same code is the same pattern, whoever runs the wizard
    and wherever the code sits in its file: the rule and a hash of the flagged lines."""
    excerpt = textwrap.dedent(finding["code"]).strip()
    payload = f"{finding['rule_id']}\n{excerpt}".encode("utf-8", "surrogatepass")
    return f"{finding['rule_id']}-{hashlib.sha256(payload).hexdigest()[:16]}"


# pages ----------------------------------------------------------------------------------


@run_action
@tier_required(WRITE)
def security(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST: run the wizard and show what it found (400 for bad input)."""
    wizard = wizard_for(request)
    if request.method == "GET":
        return _render(request, SecurityWizardForm())
    form = SecurityWizardForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render(request, form, status=400)
    data = form.cleaned_data
    run = {"code": data["source"], "language": data["language"], "filename": data["filename"]}
    try:
        result = _analyse(wizard, run)
    except (ValueError, TypeError) as exc:  # input the wizard refuses
        form.add_error(None, str(exc))
        return _render(request, form, status=400)
    except RateLimited as exc:
        return _rate_limited(request, form, exc)
    report = build_report(caller_for(request), run, result)
    if report["error"] is not None:
        form.add_error("upload" if run["filename"] else "code", _explain(report["error"]))
        return _render(request, form, status=400, report=report)
    run_id = _keep(wizard, run)
    # Announce the run to everyone, so it shows in the signal feed like any agent's work.
    wizard.agent.send_signal(
        "security_analysis", {"run": run_id, "summary": result.get("summary", {})}
    )
    response = _render(request, form, report=report, run_id=run_id)
    if run_id and request.htmx:
        push_url(response, reverse("wizards:security_run", args=[run_id]))
    return response


@run_action
@tier_required(WRITE)
def security_run(request: HttpRequest, run_id: str) -> HttpResponse:
    """GET: a kept run, shown again. POST ``finding=<n>``: stage its n-th finding."""
    wizard = wizard_for(request)
    run = _load(wizard, run_id)
    if run is None:
        if request.method == "POST" and request.htmx:
            raw = request.POST.get("finding", "")
            placeholder = {"index": int(raw)} if is_index(raw) else None
            return _stage_fragment(request, placeholder, None, error=EXPIRED, status=404)
        return _render(request, SecurityWizardForm(), status=404, problem=EXPIRED)
    try:
        result = _analyse(wizard, run)
    except RateLimited as exc:  # the cached result expired before the run
        form = SecurityWizardForm(initial={"code": run["code"], "language": run["language"]})
        return _rate_limited(request, form, exc)
    report = build_report(caller_for(request), run, result)
    if request.method == "POST":
        return _stage(request, wizard, run_id, run, report)
    form = SecurityWizardForm(initial={"code": run["code"], "language": run["language"]})
    problem = _explain(report["error"]) if report["error"] else ""
    return _render(request, form, report=report, run_id=run_id, problem=problem)


# staging --------------------------------------------------------------------------------


def _stage(
    request: HttpRequest,
    wizard: SecurityAnalysisWizard,
    run_id: str,
    run: dict[str, Any],
    report: dict[str, Any],
) -> HttpResponse:
    findings = report["findings"]
    raw = request.POST.get("finding", "")
    index = int(raw) if is_index(raw) else -1
    if not 0 <= index < len(findings):
        problem = f"This run has no finding {raw!r} to stage."
        if request.htmx:
            return _stage_fragment(request, None, run_id, error=problem, status=400)
        form = SecurityWizardForm(initial={"code": run["code"], "language": run["language"]})
        return _render(request, form, status=400, report=report, run_id=run_id, problem=problem)
    finding = findings[index]
    back = f"{reverse('wizards:security_run', args=[run_id])}#finding-{index}"
    try:
        pattern = _pattern(finding, run, run_id, report["analyzer"], request)
        staged = wizard.stage_discovered_pattern(**pattern)
    except StateConflict as exc:  # staged by another person's wizard, or already decided
        if request.htmx:
            return _stage_fragment(request, finding, run_id, error=str(exc), status=409)
        messages.error(request, str(exc))
        return HttpResponseRedirect(back)
    assert staged is not None  # the wizard has a memory
    record(
        request,
        "wizard.stage_pattern",
        staged.pattern_id,
        wizard=wizard.wizard_id,
        run=run_id,
        rule_id=finding["rule_id"],
        severity=finding["severity"],
        line=finding["line"],
        filename=run["filename"],
    )
    finding["staged"] = True
    if request.htmx:
        return _stage_fragment(request, finding, run_id)
    messages.success(request, f"Staged {staged.pattern_id} for validation.")
    return HttpResponseRedirect(back)


def _pattern(
    finding: dict[str, Any],
    run: dict[str, Any],
    run_id: str,
    analyzer: str,
    request: HttpRequest,
) -> dict[str, Any]:
    """The pattern a finding stages as: the rule, what it found, and where."""
    where = f"line {finding['line']}" + (f" of {run['filename']}" if run["filename"] else "")
    cwe = f", CWE-{finding['cwe']}" if finding.get("cwe") else ""
    return {
        "pattern_id": finding["pattern_id"],
        "pattern_type": "security",
        "name": f"{finding['rule_id']} {finding.get('rule') or ''}".strip(),
        "description": (
            f"{finding['title']} Severity {finding['severity']}, confidence "
            f"{finding['confidence']}{cwe}; found on {where}."
        ),
        "confidence": CONFIDENCE.get(finding["confidence"], 0.5),
        "code": finding["code"],
        "context": {
            "rule_id": finding["rule_id"],
            "rule": finding.get("rule"),
            "severity": finding["severity"],
            "confidence": finding["confidence"],
            "cwe": finding.get("cwe"),
            "line": finding["line"],
            "line_range": finding.get("line_range"),
            "filename": run["filename"],
            "language": run["language"],
            "analyzer": analyzer,
            "run": run_id,
            "requested_by": caller_for(request).user_id,
        },
    }


def _stage_fragment(
    request: HttpRequest,
    finding: dict[str, Any] | None,
    run_id: str | None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {"finding": finding, "run_id": run_id, "stage_error": error}
    return render(request, f"{TEMPLATE}#stage", context, status=status)


# runs -----------------------------------------------------------------------------------


def _analyse(wizard: SecurityAnalysisWizard, run: dict[str, Any]) -> dict[str, Any]:
    context = {"code": run["code"], "language": run["language"]}
    return async_to_sync(wizard.analyze_with_cache)(context)


def _keep(wizard: SecurityAnalysisWizard, run: dict[str, Any]) -> str | None:
    """Keep the run in the wizard's working memory; its id, or None if it is too big."""
    assert wizard.agent is not None
    run_id = wizard.cache_key({"code": run["code"], "language": run["language"]})
    run_id = run_id.partition(":")[2]
    try:
        wizard.agent.stash(RUN_KEY_PREFIX + run_id, run)
    except InvalidValue as exc:
        logger.warning("%s: run not kept: %s", wizard.wizard_id, exc)
        return None
    return run_id


def _load(wizard: SecurityAnalysisWizard, run_id: str) -> dict[str, Any] | None:
    if not RUN_ID.fullmatch(run_id):
        raise Http404("No such run.")
    assert wizard.agent is not None
    run = wizard.agent.retrieve(RUN_KEY_PREFIX + run_id)
    if not isinstance(run, dict) or not all(isinstance(run.get(k), str) for k in RUN_FIELDS):
        return None
    return run


def _stopped(stopped: dict[str, Any] | None) -> dict[str, Any] | None:
    """Where a run reached its time limit, with the limit as a person writes it."""
    return stopped and {**stopped, "seconds": f"{stopped['seconds']:g}"}


def _rate_limited(request: HttpRequest, form: SecurityWizardForm, exc: RateLimited) -> HttpResponse:
    wait = max(1, math.ceil(exc.retry_after))
    problem = (
        f"You have run the wizard {settings.WIZARD_RUNS_PER_MINUTE} times in the last "
        f"minute, the limit. Try again in {wait} s; runs of code already analysed are "
        "not counted."
    )
    response = _render(request, form, status=429, problem=problem)
    response["Retry-After"] = str(wait)
    return response


def _explain(error: dict[str, Any]) -> str:
    """The wizard's reason for not analysing the code, with where it is."""
    where = []
    if error.get("line"):
        where.append(f"line {error['line']}")
    if error.get("column"):
        where.append(f"column {error['column']}")
    at = f" ({', '.join(where)})" if where else ""
    if error.get("kind") == "syntax_error":
        return f"The code does not parse{at}: {error.get('message')}."
    return f"The wizard could not analyse the code{at}: {error.get('message')}."


def _lines_shown(
    count: int, findings: list[dict[str, Any]], error_line: int | None
) -> range | set[int]:
    """The lines the listing shows: all of them up to LISTING_ALL_LINES, else those
    within LISTING_CONTEXT lines of a listed finding or the error, so the page stays
    small however long the code is (the form still holds all of it)."""
    if count <= LISTING_ALL_LINES:
        return range(1, count + 1)
    marked = [error_line] if error_line else []
    for finding in findings:
        marked.extend(finding.get("line_range") or [finding["line"]])
    return {
        n
        for line in marked
        for n in range(line - LISTING_CONTEXT, line + LISTING_CONTEXT + 1)
        if 1 <= n <= count
    }


def build_report(viewer: Caller, run: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The run as the page shows it: each line of code with the findings on it, and the
    findings with whether each is already staged."""
    lines = run["code"].split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    findings = [
        {**finding, "index": index, "pattern_id": pattern_id_for(finding)}
        for index, finding in enumerate(result.get("vulnerabilities") or [])
    ]
    if findings:
        ttls = staged_patterns.staged_ttl_ms(
            get_memory(), viewer, [f["pattern_id"] for f in findings]
        )
        for finding, ttl in zip(findings, ttls, strict=True):
            finding["staged"] = ttl > 0
    on_line: dict[int, list[dict[str, Any]]] = {}
    covered: set[int] = set()
    for finding in findings:
        on_line.setdefault(finding["line"], []).append(finding)
        covered.update(finding.get("line_range") or [])
    error = result.get("error")
    error_line = error.get("line") if error else None
    shown = _lines_shown(len(lines), findings, error_line)
    rows: list[dict[str, Any]] = []
    for number, text in enumerate(lines, start=1):
        if number not in shown:
            if rows and "gap" in rows[-1]:
                rows[-1]["gap"] += 1
            else:
                rows.append({"gap": 1})
            continue
        here = on_line.get(number, [])
        worst = max(
            (f["severity"] for f in here), key=lambda s: SEVERITY_RANK.get(s, 0), default=""
        )
        rows.append(
            {
                "number": number,
                "text": text,
                "findings": here,
                "severity": worst,
                "covered": number in covered and not here,
                "error": number == error_line,
            }
        )
    return {
        "rows": rows,
        "lines": len(lines),
        "findings": findings,
        "summary": result.get("summary") or {},
        "omitted": result.get("omitted") or 0,
        "stopped": _stopped(result.get("stopped")),
        "error": error,
        "analyzer": result.get("analyzer", ""),
        "filename": run["filename"],
    }


def _render(
    request: HttpRequest, form: SecurityWizardForm, status: int = 200, **context: Any
) -> HttpResponse:
    """The page; for a form htmx posts, just the panel it swaps (form and results). A
    GET is always the whole page: htmx restoring history asks for one."""
    context.setdefault("report", None)
    context.setdefault("run_id", None)
    context.setdefault("problem", "")
    context.update(form=form, wizard_id=WIZARD_ID_PREFIX + caller_for(request).user_id)
    partial = request.method == "POST" and request.htmx
    template = f"{TEMPLATE}#wizard-panel" if partial else TEMPLATE
    return render(request, template, context, status=status)
