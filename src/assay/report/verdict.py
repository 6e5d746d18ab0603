"""Why a certification's verdict is what it is, in words, from its ``results.json``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def explain_verdict(results: Mapping[str, Any]) -> str:
    """Why a certification's verdict is what it is, in one line, from ``results.json``.

    It names the checks behind the verdict: those that block, and the
    blocking checks that were skipped (a skipped check is not evidence, so
    it is what keeps a clean run from passing), and counts the warnings. The
    command line and the HTML report both show it.
    """
    checks = [c for c in results.get("checks") or [] if isinstance(c, Mapping)]
    if not checks:
        return "the tier has no checks: nothing was judged"
    on_skip = (results.get("settings") or {}).get("on_skip", "warn")
    repeated = {i for i in (c.get("id") for c in checks)
                if sum(1 for c in checks if c.get("id") == i) > 1}

    def named(cs: list[Mapping[str, Any]], most: int = 6) -> str:
        names = [f"{c.get('id')} ({c.get('title')})" if c.get("id") in repeated
                 and c.get("title") else str(c.get("id")) for c in cs]
        more = f" and {len(names) - most} more" if len(names) > most else ""
        return ", ".join(names[:most]) + more

    def of(status: str, blocking: bool | None = None) -> list[Mapping[str, Any]]:
        return [c for c in checks if c.get("status") == status
                and (blocking is None or ((c.get("severity") or "block") == "block") == blocking)]

    def count(cs: list[Mapping[str, Any]], one: str, many: str) -> str:
        return f"{len(cs)} {one if len(cs) == 1 else many}"

    status = str(results.get("status") or "")
    if status == "passed":
        return "every check required by the policy passed"
    skipped_blocking = of("skip", blocking=True)
    if status == "blocked":
        reasons = []
        if of("fail"):
            reasons.append(f"{count(of('fail'), 'blocking check', 'blocking checks')} failed "
                           f"({named(of('fail'))})")
        if of("error", blocking=True):
            errs = of("error", blocking=True)
            reasons.append(f"{count(errs, 'blocking check', 'blocking checks')} could not be "
                           f"computed ({named(errs)})")
        if on_skip == "block" and skipped_blocking:
            were = count(skipped_blocking, "blocking check was", "blocking checks were")
            reasons.append(f"{were} skipped and the policy's on_skip is 'block' "
                           f"({named(skipped_blocking)})")
        return ("the policy does not allow this model to be approved"
                + (": " + "; ".join(reasons) if reasons else ""))
    parts = []
    if skipped_blocking:
        parts.append(f"{count(skipped_blocking, 'blocking check was', 'blocking checks were')} "
                     f"skipped and {'is' if len(skipped_blocking) == 1 else 'are'} not evidence "
                     f"({named(skipped_blocking)})")
    if of("warn"):
        parts.append(f"review {count(of('warn'), 'warning', 'warnings')}")
    if of("error", blocking=False):
        errs = of("error", blocking=False)
        parts.append(f"{count(errs, 'warn-only check', 'warn-only checks')} could not be "
                     f"computed ({named(errs)})")
    if of("skip", blocking=False):
        skips = of("skip", blocking=False)
        parts.append(f"{count(skips, 'warn-only check was', 'warn-only checks were')} skipped "
                     f"({named(skips)})")
    return "; ".join(["no blocking finding", *parts])
