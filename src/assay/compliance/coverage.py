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

_COLOURS = {COVERED: "#1a7f37", PARTIAL: "#9a6700", MISSING: "#cf222e"}


def _ref(r: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in r.items() if v is not None)


def render_coverage_html(cov: Coverage) -> str:
    """A self-contained HTML page (no scripts, no external resources)."""
    e = html.escape
    fw = cov.framework
    s = cov.summary
    rows = []
    for c in cov.clauses:
        found = "".join(f"<li><code>{e(_ref(r))}</code></li>" for r in c.found)
        missing = "".join(f"<li>{e(m)}</li>" for m in c.missing)
        rows.append(
            f"<tr><td><b>{e(c.citation)}</b><br><small>{e(c.id)}</small></td>"
            f"<td>{e(c.title)}</td>"
            f"<td><span class='st' style='background:{_COLOURS[c.status]}'>{e(c.status)}"
            f"</span></td><td><ul>{found}</ul></td><td><ul>{missing}</ul></td></tr>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(fw['title'])} coverage: {e(cov.model)} {e(cov.version)}</title>
<style>
body{{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1f2328}}
table{{border-collapse:collapse;width:100%}}
th,td{{border-bottom:1px solid #d0d7de;padding:.4rem .6rem;text-align:left;vertical-align:top}}
th{{background:#f6f8fa}} ul{{margin:0;padding-left:1.1rem}} code{{font-size:.8rem}}
.st{{color:#fff;border-radius:1em;padding:.1rem .6rem;font-size:.85rem}}
</style></head><body>
<h1>{e(fw['title'])} &mdash; coverage of {e(cov.model)} version {e(cov.version)}</h1>
<p>Pack <code>{e(fw['framework'])}</code> version {e(fw['version'])}
(sha256 <code>{e(fw['sha256'])}</code>), generated {e(cov.generated_at)}.</p>
<p><b>{s[COVERED]}</b> covered, <b>{s[PARTIAL]}</b> partial, <b>{s[MISSING]}</b> missing
of {s['total']} clauses.</p>
<table><thead><tr><th>Clause</th><th>Title</th><th>Status</th><th>Evidence found</th>
<th>Missing</th></tr></thead><tbody>
{''.join(rows)}
</tbody></table></body></html>
"""
