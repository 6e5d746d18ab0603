"""The model card page: the card of a version, rendered from the store as it is now.

The page shows what ``assay card MODEL VERSION --format html`` would write; it stores
nothing (generating a card as evidence is ``POST /api/.../cards`` or ``assay card``).
"""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from assay.api.deps import reading
from assay.web.pages import signed_in

router = APIRouter(include_in_schema=False)

#: The card is assay's own HTML, but it holds text people typed: no script, no forms.
CARD_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")


@router.get("/models/{name}/versions/{version}/card", response_class=HTMLResponse)
def card_page(request: Request, name: str = Path(..., max_length=200),
              version: str = Path(..., max_length=100)) -> Response:
    from assay.registry.cards import card_document
    from assay.report.card import render_card

    signed_in(request)
    with reading(request) as s:
        s.info["settings"] = request.app.state.settings
        card = card_document(s, name, version)
    return Response(render_card(card, "html"), media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": CARD_CSP})
