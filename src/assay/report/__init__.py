"""Reports rendered from certification results.

``render_report(results)`` turns the ``results.json`` dictionary into a
self-contained HTML validation report (inline CSS and SVG charts, no script,
opens offline); ``write_report(results, path)`` writes it to a file.
"""

from __future__ import annotations

from assay.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
