"""Handing stored files to a browser without letting them act on the app's origin.

A file someone uploaded (a document attached to a sign-off, a report) may be HTML
or SVG with script or a ``<meta http-equiv="refresh">`` in it. It is served as
an attachment (the browser saves it rather than showing it), as opaque bytes, not
sniffed, and under ``Content-Security-Policy: sandbox`` (no same-origin, no
script, no navigation of the page), so even when opened it cannot act as the app.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import Response

#: The CSP of anything uploaded: a sandbox without same-origin, script or forms.
SANDBOX_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; " \
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def attachment(data: bytes, file_name: str) -> Response:
    """``data`` as a download named ``file_name`` (already made safe by the domain)."""
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_"
                         for ch in file_name) or "document"
    disposition = f'attachment; filename="{ascii_name}"; ' \
                  f"filename*=UTF-8''{quote(file_name, safe='')}"
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": disposition,
                             "Content-Security-Policy": SANDBOX_CSP,
                             "X-Content-Type-Options": "nosniff",
                             "Cache-Control": "private, no-store"})
