"""The Satu Data portal: the forum's people work in a browser (``satudata serve``).

A Starlette app with server-rendered pages (Jinja, autoescaped; no JavaScript). Every route
asks who is logged in and, for a unit or a region, whether that person may see it: an
operator only their own unit, a walidata the units and regions below theirs; an unknown or
foreign unit answers 404 alike. Every form carries the session's CSRF token. Sign-off
decisions go through ``forum.signoff.decide``, the same code path as the CLI, via a queue kept
in the portal's database (``portal/decisions.py``), so a decision asked while a run holds the
build file waits for it and is never lost.
"""

from __future__ import annotations

import hmac
import json
import secrets
from contextlib import asynccontextmanager

import duckdb
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from orchestration.forum.review import page_context
from orchestration.ingest.contract import covers
from orchestration.ingest.store import rows, submitting_units
from orchestration.pages import render
from orchestration.portal.accounts import Accounts, User
from orchestration.portal.decisions import DecisionQueue
from orchestration.portal.guard import Guard
from orchestration.portal.uploads import UploadError, manifest_from_form, place
from orchestration.publication import exports
from orchestration.publication.publish import PUBLISHED_TABLES, current_id
from orchestration.settings import Settings

COOKIE = "satudata_session"
LOGIN_COOKIE = "satudata_login"  # the login form's CSRF token (no session yet)
UPLOAD_FIELDS = ("keluarga", "anggota", "bantuan", "workbook", "archive", "manifest")


class Portal:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.accounts = Accounts(settings)
        self.decisions = DecisionQueue(settings, self.accounts)

    @asynccontextmanager
    async def lifespan(self, app):
        self.decisions.start()
        try:
            yield
        finally:
            self.decisions.stop()

    # --- who asks ----------------------------------------------------------------------------
    def user(self, request: Request) -> tuple[User, str]:
        found = self.accounts.session(request.cookies.get(COOKIE))
        if found is None:
            raise HTTPException(303, headers={"Location": "/login"})
        return found

    async def form(self, request: Request, csrf: str, **limits) -> dict:
        form = await request.form(**limits)
        if not hmac.compare_digest(str(form.get("csrf", "")), csrf):
            raise HTTPException(403, "CSRF token missing or wrong / token CSRF salah")
        return form

    def page(self, template: str, user: User | None, csrf: str = "", status: int = 200, **ctx):
        return HTMLResponse(
            render(f"portal/{template}", user=user, csrf=csrf, **ctx), status_code=status
        )

    def unit_of(self, user: User, unit: str) -> str:
        if unit not in submitting_units() or not user.sees_unit(unit):
            raise HTTPException(404)
        return unit

    def region_of(self, user: User, region: str) -> str:
        regions = {u[:5] for u in submitting_units()} | {"64"}
        if user.role != "walidata" or region not in regions or not covers(user.scope, region):
            raise HTTPException(404)
        return region

    def published(self) -> duckdb.DuckDBPyConnection | None:
        if not self.settings.published_db.exists():
            return None
        return duckdb.connect(str(self.settings.published_db), read_only=True)

    # --- login ------------------------------------------------------------------------------
    async def login_page(self, request: Request):
        token = secrets.token_urlsafe(24)
        response = self.page("login.html.j2", None, token)
        self._cookie(request, response, LOGIN_COOKIE, token, 600)
        return response

    async def login(self, request: Request):
        expected = request.cookies.get(LOGIN_COOKIE)
        if not expected:
            raise HTTPException(403, "CSRF token missing / token CSRF tidak ada")
        form = await self.form(request, expected, max_files=0, max_fields=5)
        client = request.client.host if request.client else ""
        token = await run_in_threadpool(  # argon2 takes its time: not on the event loop
            self.accounts.login,
            str(form.get("username", ""))[:64],
            str(form.get("password", ""))[:1024],
            client,
        )
        if token is None:
            fresh = secrets.token_urlsafe(24)
            response = self.page("login.html.j2", None, fresh, status=401, failed=True)
            self._cookie(request, response, LOGIN_COOKIE, fresh, 600)
            return response
        response = RedirectResponse("/", 303)
        self._cookie(request, response, COOKIE, token, 8 * 3600)
        response.delete_cookie(LOGIN_COOKIE)
        return response

    async def logout(self, request: Request):
        user, csrf = self.user(request)
        await self.form(request, csrf, max_files=0, max_fields=5)
        self.accounts.logout(request.cookies[COOKIE])
        self.accounts.audit("logout", user.username)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE)
        return response

    def _cookie(self, request: Request, response: Response, name: str, value: str, age: int):
        response.set_cookie(
            name,
            value,
            max_age=age,
            httponly=True,
            samesite="strict",
            secure=self.settings.portal_secure_cookies or request.url.scheme == "https",
        )

    async def home(self, request: Request):
        user, _ = self.user(request)
        if user.role == "operator":
            return RedirectResponse(f"/units/{user.scope}", 303)
        if user.role == "walidata":
            return RedirectResponse(f"/regions/{user.scope}", 303)
        return RedirectResponse("/publication", 303)

    # --- a unit: its submissions, uploads and confirmations ----------------------------------
    async def unit(self, request: Request):
        user, csrf = self.user(request)
        unit = self.unit_of(user, request.path_params["unit"])
        return self._unit_page(user, csrf, unit, message=request.query_params.get("m"))

    def _unit_page(self, user: User, csrf: str, unit: str, status: int = 200, **shown):
        submissions = self._submissions(unit)
        confirmable = sorted(
            {s["period"] for s in submissions if s["published_status"] == "accepted"}, reverse=True
        )
        return self.page(
            "unit.html.j2",
            user,
            csrf,
            status,
            unit=unit,
            unit_name=submitting_units()[unit],
            submissions=submissions,
            confirmable=confirmable,
            decisions=self.decisions.recent([unit]),
            **{"message": None, "error": None, **shown},
        )

    def _submissions(self, unit: str) -> list[dict]:
        """Every submission of the unit the portal knows of: waiting in landing, judged by
        ingestion (its report), and as published."""
        published: dict[str, dict] = {}
        con = self.published()
        if con is not None:
            with con:
                for row in rows(
                    con, "select * from fct_submission_status where unit_code = ?", [unit]
                ):
                    if row.get("submission_id"):
                        published[row["submission_id"]] = row
        found: dict[str, dict] = {}
        for path in sorted((self.settings.reports / unit).glob("*/*.json")):
            report = json.loads(path.read_text(encoding="utf-8"))
            row = published.get(report["submission_id"], {})
            found[report["landing_name"]] = {
                "landing_name": report["landing_name"],
                "period": report.get("period") or path.parent.name,
                "received_at": report.get("received_at"),
                "status": row.get("status") or report["status"],
                "published_status": row.get("status"),
                "reason": report.get("reason_en") if report["status"] == "quarantined" else None,
                "confirmed_by": row.get("confirmed_by"),
                "report": path.with_suffix(".html").name,
                "rejects": report.get("rejects_file") if report.get("rejects_total") else None,
            }
        for upload in self.accounts.uploads(unit):
            if upload["landing_name"] not in found:
                waiting = (self.settings.landing / upload["landing_name"]).exists()
                found[upload["landing_name"]] = {
                    "landing_name": upload["landing_name"],
                    "period": upload["period"],
                    "received_at": upload["received_at"],
                    "status": "received" if waiting else "validated",
                    "published_status": None,
                    "reason": None,
                    "confirmed_by": None,
                    "report": None,
                    "rejects": None,
                }
        return sorted(found.values(), key=lambda s: str(s["received_at"]), reverse=True)

    async def upload(self, request: Request):
        user, csrf = self.user(request)
        unit = self.unit_of(user, request.path_params["unit"])
        if user.role != "operator":
            raise HTTPException(403)
        form = await self.form(request, csrf, max_files=6, max_fields=12)
        files = {
            field: value.file
            for field in UPLOAD_FIELDS
            if isinstance(value := form.get(field), UploadFile) and value.filename
        }
        try:
            manifest = None
            if not ({"archive", "manifest"} & set(files)):
                manifest = manifest_from_form(
                    unit,
                    str(form.get("periode", "")),
                    str(form.get("petugas", "")) or user.full_name,
                    str(form.get("catatan", "")),
                )
            placed = await run_in_threadpool(place, self.settings, unit, files, manifest)
        except UploadError as exc:
            self.accounts.audit("upload_refused", user.username, f"{unit}: {exc.english}")
            return self._unit_page(user, csrf, unit, 400, error=exc)
        finally:
            await form.close()
        self.accounts.record_upload(user.username, placed)
        self.accounts.audit(
            "upload", user.username, f"{unit} {placed.period} {placed.landing_name}"
        )
        return RedirectResponse(f"/units/{unit}?m=uploaded", 303)

    async def report(self, request: Request):
        user, _ = self.user(request)
        unit = self.unit_of(user, request.path_params["unit"])
        name = request.path_params["name"]
        # only a file the reports folder holds for this unit: the name is looked up, not joined
        files = {p.name: p for p in (self.settings.reports / unit).glob("*/*") if p.is_file()}
        path = files.get(name)
        if path is None or path.suffix not in (".html", ".csv"):
            raise HTTPException(404)
        media = "text/html; charset=utf-8" if path.suffix == ".html" else "text/csv; charset=utf-8"
        return FileResponse(path, media_type=media)

    async def unit_decision(self, request: Request):
        user, csrf = self.user(request)
        unit = self.unit_of(user, request.path_params["unit"])
        if user.role != "operator":
            raise HTTPException(403)
        return await self._ask(request, user, csrf, unit, ("confirm", "withdraw"), "units")

    async def _ask(self, request, user: User, csrf: str, code: str, actions, back: str):
        """One decision of the forum, through the queue (``decisions.py``)."""
        form = await self.form(request, csrf, max_files=0, max_fields=5)
        action = str(form.get("action", ""))
        if action not in actions:
            raise HTTPException(400)
        period, note = str(form.get("period", "")), str(form.get("note", ""))
        await run_in_threadpool(self.decisions.ask, user, action, code, period, note)
        return RedirectResponse(f"/{back}/{code}?m=decision", 303)

    # --- a region: the walidata's view -------------------------------------------------------
    async def region(self, request: Request):
        user, csrf = self.user(request)
        region = self.region_of(user, request.path_params["region"])
        units = sorted(u for u in submitting_units() if covers(region, u))
        con = self.published()
        pages = []
        if con is not None:
            with con:
                figures = rows(
                    con,
                    """
                    select p.*, r.region_name, r.is_submitting_unit,
                           lag(p.period) over w as previous_period
                    from fct_poverty p join dim_region r using (region_code, level)
                    where p.region_code = ?
                    window w as (partition by p.region_code, p.level order by p.period)
                    order by p.period desc
                    """,
                    [region],
                )
                by_period = {f["period"]: f for f in figures}
                for figure in figures[:3]:
                    pages.append(
                        page_context(con, figure, by_period.get(figure["previous_period"]))
                    )
        return self.page(
            "region.html.j2",
            user,
            csrf,
            region=region,
            pages=pages,
            regencies=sorted(
                {u[:5] for u in submitting_units() if region == "64" and covers(region, u)}
            ),
            decisions=self.decisions.recent([region, *units]),
            message=request.query_params.get("m"),
        )

    async def region_decision(self, request: Request):
        user, csrf = self.user(request)
        region = self.region_of(user, request.path_params["region"])
        return await self._ask(request, user, csrf, region, ("approve", "unlock"), "regions")

    # --- the publication: every role reads it -------------------------------------------------
    async def publication(self, request: Request):
        user, csrf = self.user(request)
        review = self.settings.reports / "review"
        return self.page(
            "publication.html.j2",
            user,
            csrf,
            publication_id=current_id(self.settings),
            tables=list(PUBLISHED_TABLES),
            periods=sorted((p.parent.name for p in review.glob("*/index.html")), reverse=True),
            bulletin=(self.settings.warehouse / "bulletin.html").exists(),
        )

    async def bulletin(self, request: Request):
        self.user(request)
        path = self.settings.warehouse / "bulletin.html"
        if not path.exists():
            raise HTTPException(404)
        return FileResponse(path.resolve(), media_type="text/html; charset=utf-8")

    async def review_page(self, request: Request):
        self.user(request)
        folder = self.settings.reports / "review"
        pages = {f"{p.parent.name}/{p.name}": p for p in folder.glob("*/*.html") if p.is_file()}
        path = pages.get(f"{request.path_params['period']}/{request.path_params['page']}")
        if path is None:
            raise HTTPException(404)
        return FileResponse(path, media_type="text/html; charset=utf-8")

    async def table(self, request: Request):
        self.user(request)
        table = request.path_params["table"]
        if table not in PUBLISHED_TABLES or not self.settings.published_db.exists():
            raise HTTPException(404)
        return Response(
            await run_in_threadpool(exports.table_csv, self.settings, table),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{table}.csv"'},
        )

    async def workbook(self, request: Request):
        self.user(request)
        if not self.settings.published_db.exists():
            raise HTTPException(404)
        path = await run_in_threadpool(exports.workbook, self.settings)
        name = f"satudata-{current_id(self.settings) or 'publication'}.xlsx"
        return FileResponse(
            path,
            filename=name,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            background=BackgroundTask(path.unlink),
        )


async def _error(request: Request, exc: HTTPException):
    if exc.status_code == 303:
        return RedirectResponse(exc.headers["Location"], 303)
    words = {
        400: ("Permintaan tidak sah", "Bad request"),
        403: ("Tidak diizinkan", "Forbidden"),
        404: ("Tidak ditemukan", "Not found"),
        413: ("Unggahan terlalu besar", "Upload too large"),
    }.get(exc.status_code, ("Galat", "Error"))
    return HTMLResponse(
        render("portal/error.html.j2", user=None, csrf="", words=words, detail=exc.detail),
        status_code=exc.status_code,
    )


def create_app(settings: Settings | None = None) -> Guard:
    settings = settings or Settings.from_env()
    portal = Portal(settings.ensure())
    routes = [
        Route("/", portal.home),
        Route("/login", portal.login_page, methods=["GET"]),
        Route("/login", portal.login, methods=["POST"]),
        Route("/logout", portal.logout, methods=["POST"]),
        Route("/units/{unit}", portal.unit),
        Route("/units/{unit}/upload", portal.upload, methods=["POST"]),
        Route("/units/{unit}/decisions", portal.unit_decision, methods=["POST"]),
        Route("/units/{unit}/reports/{name}", portal.report),
        Route("/regions/{region}", portal.region),
        Route("/regions/{region}/decisions", portal.region_decision, methods=["POST"]),
        Route("/publication", portal.publication),
        Route("/publication/bulletin", portal.bulletin),
        Route("/publication/review/{period}/{page}", portal.review_page),
        Route("/publication/tables/{table}.csv", portal.table),
        Route("/publication/workbook.xlsx", portal.workbook),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _error},
        lifespan=portal.lifespan,
    )
    app.state.portal = portal
    return Guard(app, settings.portal_max_upload_bytes)
