"""How close a staged pattern is to what the library holds already, and how it differs.

Similarity is difflib's ratio over name, description and code. To stay cheap it looks
at a bounded set of library rows (the pattern's own type first, then the newest of the
rest), ranks them by an upper bound, and computes the real ratio for the best few.
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, TextLexer, get_lexer_by_name, guess_lexer
from pygments.util import ClassNotFound

from empathy_web.library.models import PromotedPattern
from memory import StagedPattern

DUPLICATE_THRESHOLD = 0.8
CANDIDATES = 200
SHORTLIST = 10
MAX_CHARS = 4000  # of each text compared; longer code is compared by its start


@dataclass
class Match:
    pattern: PromotedPattern
    score: float
    diff: str
    diff_html: SafeString

    @property
    def likely_duplicate(self) -> bool:
        return self.score >= DUPLICATE_THRESHOLD


def text_of(name: str, description: str, code: str | None) -> str:
    return f"{name}\n{description}\n{code or ''}".strip()


def _candidates(pattern: StagedPattern) -> list[PromotedPattern]:
    rows = PromotedPattern.objects.exclude(pattern_id=pattern.pattern_id).order_by("-promoted_at")
    same = list(rows.filter(pattern_type=pattern.pattern_type)[:CANDIDATES])
    rest = CANDIDATES - len(same)
    if rest > 0:
        same += list(rows.exclude(pattern_type=pattern.pattern_type)[:rest])
    return same


def nearest(pattern: StagedPattern, limit: int = 3) -> list[Match]:
    """Up to ``limit`` library patterns closest to ``pattern``, closest first."""
    mine = text_of(pattern.name, pattern.description, pattern.code)
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(mine[:MAX_CHARS])
    bounded = []
    for row in _candidates(pattern):
        theirs = text_of(row.name, row.description, row.code)
        matcher.set_seq1(theirs[:MAX_CHARS])
        bounded.append((matcher.quick_ratio(), row, theirs))
    bounded.sort(key=lambda item: item[0], reverse=True)
    scored = []
    for _, row, theirs in bounded[:SHORTLIST]:
        matcher.set_seq1(theirs[:MAX_CHARS])
        scored.append((matcher.ratio(), row, theirs))
    scored.sort(key=lambda item: item[0], reverse=True)
    matches = []
    for score, row, theirs in scored[:limit]:
        diff = "\n".join(
            difflib.unified_diff(
                theirs.splitlines(),
                mine.splitlines(),
                fromfile=f"library/{row.pattern_id}",
                tofile=f"staged/{pattern.pattern_id}",
                lineterm="",
            )
        )
        matches.append(Match(row, round(score, 3), diff, highlighted(diff, DiffLexer())))
    return matches


class _Formatter(HtmlFormatter):
    """Pygments' HTML, with quotes in the code escaped too, as everywhere else on the
    site (Pygments leaves them: they are harmless in element text)."""

    def _translate_parts(self, value: str) -> list[str]:
        return html.escape(value, quote=True).split("\n")


def highlighted(code: str, lexer: object | None = None, language: str | None = None) -> SafeString:
    """``code`` as HTML, coloured by Pygments (which escapes it), with inline styles so
    the page needs no extra stylesheet."""
    if lexer is None:
        lexer = _lexer(code, language)
    formatter = _Formatter(noclasses=True, nobackground=True, cssclass="highlight")
    return mark_safe(highlight(code, lexer, formatter))  # noqa: S308 - Pygments escapes


def _lexer(code: str, language: str | None) -> object:
    if language:
        try:
            return get_lexer_by_name(language)
        except ClassNotFound:
            pass
    try:
        return guess_lexer(code)
    except ClassNotFound:
        return TextLexer()
