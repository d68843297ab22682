"""The dashboards: sign-in and sign-out, the pages, and the reads they need.

A person signs in once by pasting a token into a form; the answer is a session cookie
(HttpOnly, SameSite=Strict, Secure over TLS) that is not the token (services/api/
sessions.py). Pages without a session redirect to the sign-in page. The pages' fetches
ride on the cookie. Every cookie-authenticated POST must come from this site (fetch
metadata or Origin) and carry the proof (a synchronizer token) that only the session's
own pages contain: sign-out in its form, the record forms' fetches in a header (services/
api/deps.py), and those only for a session whose token may write (events:write).
"""

from __future__ import annotations

import functools
import html
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from contract.commands import SPECS
from domain.corrections import CORRECTABLE
from domain.partnership import Partnership
from domain.values import OUTCOME_FACTOR_VALUES
from services.api import networks, organisation, partnerships, throttle
from services.api.deps import HistoryReader, ServicesDep
from services.api.problems import Problem
from services.api.projections import Dashboard
from services.api.sessions import (
    COOKIE,
    LIFETIME,
    SESSION_SCOPE,
    WRITE_SCOPE,
    authenticate_session,
    close_session,
    cross_site,
    form_proof,
    open_session,
    proves,
)
from services.auth import authenticate

STATIC = Path(__file__).parent.parent / "static"
HOME = "/dashboard/attention.html"  # the dashboards open on what needs doing this week
SIGN_IN = "/dashboard/sign-in"
MAX_FORM_BYTES = 4096  # a token and a return address
_NO_STORE = {"Cache-Control": "no-store"}

pages = APIRouter(include_in_schema=False)
reads = APIRouter(prefix="/v1/projections/partnerships", tags=["projections"])
organisation_reads = APIRouter(prefix="/v1/projections/organisation", tags=["projections"])


# ---- the reads a dashboard needs, with dashboards:read --------------------------------


def for_dashboards(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The same route code, asking for dashboards:read where it asked for history:read."""
    signature = inspect.signature(endpoint, eval_str=True)
    parameters = [
        p.replace(annotation=Dashboard) if p.annotation == HistoryReader else p for p in signature.parameters.values()
    ]
    if parameters == list(signature.parameters.values()):
        raise TypeError(f"{endpoint.__name__} asks for no history:read")

    @functools.wraps(endpoint)
    def route(*args: Any, **kwargs: Any) -> Any:
        return endpoint(*args, **kwargs)

    route.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return route


reads.get("/{partnership_id}", summary="Partnership state (dashboards)")(for_dashboards(partnerships.get_partnership))
reads.get("/{partnership_id}/history", summary="Partnership history (dashboards)")(
    for_dashboards(partnerships.get_history)
)
reads.get("/{partnership_id}/owners", summary="Ownership timeline (dashboards)")(
    for_dashboards(partnerships.get_owners)
)
# The partnership page lists the networks it is a member of.
reads.get("/{partnership_id}/networks", summary="Networks the partnership is in (dashboards)")(
    for_dashboards(networks.get_partnership_networks)
)
# The evaluation form scores the criteria catalogue in force.
organisation_reads.get("/criteria", summary="Criteria catalogue (dashboards)")(
    for_dashboards(organisation.get_criteria)
)


def _forms() -> dict[str, Any]:
    """What the record forms are built from, straight from the contract: each partnership
    command's JSON Schema by its type (fields, enums, limits), the fields a correction may
    change per event type, and the outcome factors an evaluation may give."""
    commands = {s.event.type: s.model.model_json_schema() for s in SPECS if s.aggregate is Partnership}
    return {
        "commands": commands,
        "correctable": {kind: sorted(fields) for kind, fields in CORRECTABLE.items()},
        "outcome_factors": list(OUTCOME_FACTOR_VALUES),
    }


FORMS = _forms()


# ---- sign-in, sign-out and the pages -------------------------------------------------


def _local(target: str | None) -> str:
    """Where to go after signing in: a dashboard page of this site, never elsewhere."""
    if (
        target
        and target.startswith("/dashboard/")
        and not target.startswith(SIGN_IN)
        and "\\" not in target
        and target.isprintable()
    ):
        return target
    return HOME


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Problem(413, "too_large", "The form is too large")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), max_num_fields=4).items()}


def _sign_in_page(next_page: str, error: str = "", status: int = 200) -> HTMLResponse:
    text = (STATIC / "sign-in.html").read_text()
    message = f'<p class="error" id="sign-in-error">{html.escape(error)}</p>' if error else ""
    text = text.replace("{error}", message).replace("{next}", html.escape(_local(next_page)))
    return HTMLResponse(text, status_code=status, headers=_NO_STORE)


def _session_cookie(response: Response, request: Request, value: str | None) -> None:
    secure = request.url.scheme == "https"
    if value is None:
        response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
    else:
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(LIFETIME.total_seconds()),
            path="/",
            secure=secure,
            httponly=True,
            samesite="strict",
        )


@pages.get("/dashboard")
def dashboard() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=303)


@pages.get("/dashboard/forms.json")
def forms() -> dict[str, Any]:
    return FORMS  # public, like /openapi.json, which says the same at greater length


@pages.get(SIGN_IN)
def sign_in_form(next_page: Annotated[str, Query(alias="next")] = HOME) -> HTMLResponse:
    return _sign_in_page(next_page)


@pages.post(SIGN_IN, response_model=None)
async def sign_in(request: Request, services: ServicesDep) -> Response:
    if cross_site(request):
        raise Problem(403, "cross_site", "Sign in from this site's own page")
    form = await _form(request)
    token = form.get("token", "").strip()
    next_page = _local(form.get("next"))
    schema = services.settings.db_schema
    with services.pool.connection() as conn:
        principal = authenticate(conn, schema, token) if token else None
        if principal is None:
            throttle.failed(request)  # counted like any failed token: 429 past the limit
            return _sign_in_page(next_page, "That token is not valid (unknown, revoked or expired).", 401)
        if not principal.allows(SESSION_SCOPE):
            return _sign_in_page(next_page, f"That token lacks the {SESSION_SCOPE} scope.", 403)
        session_id = open_session(conn, schema, token)
    response = RedirectResponse(next_page, status_code=303, headers=_NO_STORE)
    _session_cookie(response, request, session_id)
    return response


@pages.post("/dashboard/sign-out", response_model=None)
async def sign_out(request: Request, services: ServicesDep) -> Response:
    # Like every cookie write: from this site, with the proof only our page holds.
    session_id = request.cookies.get(COOKIE)
    proof = (await _form(request)).get("proof", "")
    forged = bool(session_id) and not proves(session_id or "", proof)
    if cross_site(request) or forged:
        raise Problem(403, "cross_site", "Sign out from this site's own page")
    if session_id:
        with services.pool.connection() as conn:
            close_session(conn, services.settings.db_schema, session_id)
    response = RedirectResponse(SIGN_IN, status_code=303, headers=_NO_STORE)
    _session_cookie(response, request, None)
    return response


@pages.get("/dashboard/{name}.html", response_model=None)
def dashboard_page(
    name: Literal["attention", "portfolio", "lifecycle", "partnership", "networks"],
    request: Request,
    services: ServicesDep,
) -> Response:
    session_id = request.cookies.get(COOKIE, "")
    principal = None
    if session_id:
        with services.pool.connection() as conn:
            principal = authenticate_session(conn, services.settings.db_schema, session_id)
    if principal is None:
        # Back here after signing in; an old bookmark's ?token= is not carried along.
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if "token" not in k.lower()])
        here = request.url.path + (f"?{query}" if query else "")
        return RedirectResponse(f"{SIGN_IN}?next={quote(here, safe='')}", status_code=303, headers=_NO_STORE)
    page = (STATIC / "page.html").read_text()  # one shell for every page; the script renders it
    writes = "yes" if principal.allows(WRITE_SCOPE) else "no"  # the record forms, or a note
    page = page.replace("{page}", name).replace("{proof}", form_proof(session_id)).replace("{writes}", writes)
    return HTMLResponse(page, headers=_NO_STORE)


def install(api: FastAPI) -> None:
    api.include_router(reads)
    api.include_router(organisation_reads)
    api.include_router(pages)
    # Script and style ship inside the package: dashboards work offline. After the
    # routes, so the pages and sign-in answer before the files do.
    api.mount("/dashboard", StaticFiles(directory=STATIC), name="dashboard")
