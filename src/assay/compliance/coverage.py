"""Coverage of a framework's clauses by the evidence a model version has.

Each clause's evidence tree is evaluated bottom-up:

- a leaf is what its provider found: ``covered``, ``partial`` or ``missing``;
- ``all`` (and a plain list) is ``covered`` when every item is covered,
  ``missing`` when none is covered or partial, else ``partial``;
- ``any`` is ``covered`` when one item is covered, else ``partial`` when one
  is partial, else ``missing``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from assay.compliance.evidence import (
    COVERED,
    MISSING,
    PARTIAL,
    EvidenceContext,
    Finding,
    find,
)
from assay.compliance.packs import Pack, Requirement, load_pack

STATUSES = (COVERED, PARTIAL, MISSING)


@dataclass
class ClauseCoverage:
    id: str
    title: str
    citation: str
    status: str
    found: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)  # per leaf requirement

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "citation": self.citation,
                "status": self.status, "found": self.found, "missing": self.missing,
                "evidence": self.evidence}


@dataclass
class Coverage:
    model: str
    version: str
    framework: dict[str, Any]
    clauses: list[ClauseCoverage]
    generated_at: str
    certification: int | None = None

    @property
    def summary(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for c in self.clauses:
            out[c.status] += 1
        out["total"] = len(self.clauses)
        return out

    def clause(self, clause_id: str) -> ClauseCoverage:
        for c in self.clauses:
            if c.id == clause_id:
                return c
        raise KeyError(clause_id)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "framework": self.framework,
                "generated_at": self.generated_at, "certification": self.certification,
                "summary": self.summary, "clauses": [c.to_dict() for c in self.clauses]}


def _evaluate(ctx: EvidenceContext, req: Requirement,
              leaves: list[dict[str, Any]]) -> Finding:
    if req.is_leaf:
        f = find(ctx, req.kind, req.arg)
        leaves.append({"requirement": req.label(), **f.to_dict()})
        return f
    parts = [_evaluate(ctx, item, leaves) for item in req.items]
    found = [x for p in parts for x in p.found]
    statuses = [p.status for p in parts]
    if req.kind == "all":
        status = (COVERED if all(s == COVERED for s in statuses)
                  else MISSING if all(s == MISSING for s in statuses)
                  else PARTIAL)
        missing = [m for p in parts if p.status != COVERED for m in p.missing]
    else:  # any
        status = (COVERED if COVERED in statuses else PARTIAL if PARTIAL in statuses
                  else MISSING)
        missing = ([] if status == COVERED else
                   ["one of: " + "; or ".join("; ".join(p.missing) for p in parts)])
    return Finding(status, found, missing)


def coverage(session: Session, model: str, version: str, framework: str | Pack, *,
             settings: Any | None = None, now: datetime | None = None) -> Coverage:
    """Per clause of ``framework`` (a shipped name, a pack file, or a :class:`Pack`):
    covered, partial or missing, with the evidence found and what is missing."""
    pack = framework if isinstance(framework, Pack) else load_pack(framework)
    ctx = EvidenceContext(session, model, version, settings=settings)
    clauses = []
    for c in pack.clauses:
        leaves: list[dict[str, Any]] = []
        f = _evaluate(ctx, c.evidence, leaves)
        clauses.append(ClauseCoverage(c.id, c.title, c.citation, f.status, f.found,
                                      f.missing, leaves))
    when = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    cert = ctx.certification
    return Coverage(model=ctx.mv.model.name, version=ctx.mv.version,
                    framework=pack.to_dict(), clauses=clauses, generated_at=when,
                    certification=cert.id if cert is not None else None)


# --------------------------------------------------------------------------- HTML

#: The validation report's look (its palette, badges and count boxes), for the pages of
#: the compliance reports and documentation packs: self-contained, no scripts.
STYLE = """
:root { --ink:#24292f; --muted:#57606a; --line:#d0d7de; --soft:#f6f8fa;
  --pass:#1a7f37; --warn:#b35900; --fail:#c62828; --accent:#0b5cad; }
* { box-sizing: border-box; }
body { font: 14px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif;
  color: var(--ink); margin: 0; background: #fff; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px;
  border-bottom: 2px solid var(--ink); }
a { color: var(--accent); }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
.muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
td { overflow-wrap: anywhere; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--soft); font-weight: 600; font-size: 12px; }
ul { margin: 0; padding-left: 18px; }
.badge { display: inline-block; min-width: 64px; padding: 1px 8px; border-radius: 10px;
  font-size: 12px; font-weight: 600; color: #fff; text-align: center; white-space: nowrap; }
.badge.covered, .badge.included { background: var(--pass); }
.badge.partial { background: var(--warn); } .badge.missing { background: var(--fail); }
.counts { display: flex; gap: 10px; flex-wrap: wrap; margin: 10px 0; }
.count { border: 1px solid var(--line); border-radius: 6px; padding: 6px 14px; min-width: 96px; }
.count b { font-size: 20px; display: block; }
"""


def page(title: str, body: str) -> str:
    """A self-contained HTML page in the report's style."""
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def badge(status: str) -> str:
    return f"<span class='badge {html.escape(status)}'>{html.escape(status)}</span>"


_HEX = re.compile(r"^(sha256:)?([0-9a-f]{64})$")


def _short(value: Any) -> str:
    """A digest cut to its first 12 hex digits for reading (the JSON keeps it whole)."""
    m = _HEX.match(str(value))
    return f"{m.group(1) or ''}{m.group(2)[:12]}…" if m else str(value)


def _ref(r: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_short(v)}" for k, v in r.items() if v is not None)


def render_coverage_html(cov: Coverage) -> str:
    """The coverage report as a self-contained HTML page (no scripts, nothing fetched)."""
    e = html.escape
    fw = cov.framework
    s = cov.summary
    rows = []
    for c in cov.clauses:
        found = "".join(f"<li><code>{e(_ref(r))}</code></li>" for r in c.found)
        missing = "".join(f"<li>{e(m)}</li>" for m in c.missing)
        leaves = "".join(f"<li>{badge(x['status'])} <code>{e(x['requirement'])}</code></li>"
                         for x in c.evidence)
        rows.append(
            f"<tr id='{e(c.id)}'><td><b>{e(c.citation)}</b><br><span class='muted'>"
            f"{e(c.id)}</span></td><td>{e(c.title)}<ul>{leaves}</ul></td>"
            f"<td>{badge(c.status)}</td><td><ul>{found}</ul></td><td><ul>{missing}</ul></td>"
            "</tr>")
    counts = "".join(f"<div class='count'><b>{s[k]}</b>{k}</div>" for k in STATUSES)
    body = (f"<h1>{e(fw['title'])}: coverage of {e(cov.model)} {e(cov.version)}</h1>"
            f"<p class='muted'>Pack <code>{e(fw['framework'])}</code> version "
            f"{e(fw['version'])} (sha256 <code>{e(fw['sha256'])}</code>); certification "
            f"{'#' + str(cov.certification) if cov.certification else 'none'}; generated "
            f"{e(cov.generated_at)}.</p><div class='counts'>{counts}<div class='count'>"
            f"<b>{s['total']}</b>clauses</div></div>"
            "<table><thead><tr><th>Clause</th><th>Title and requirements</th><th>Status</th>"
            "<th>Evidence found</th><th>Missing</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")
    return page(f"{fw['title']} coverage: {cov.model} {cov.version}", body)
