"""The review page's server: Starlette routes under a per-run token, run by Uvicorn in a thread.

Every request must carry the run's token (``?token=``, the ``rainset_token_<port>`` cookie the
page sets, or the ``X-Rainset-Token`` header); anything else gets 403. Decisions are POSTs that
carry the token in the header (a cookie alone is not enough, so no other site can post one).
No route takes a path: the page's files are a fixed list, images are named by candidate id and
frame index (:class:`rainset.web.board.Board`).
"""

from __future__ import annotations

import getpass
import hmac
import json
import secrets
import socket
import threading
from importlib import resources

from rainset.dataset.layout import REVIEW
from rainset.errors import InputError
from rainset.web.board import Board

#: The page's files (package data in rainset/web/static/), by the name the page asks for.
STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
#: Longest a state request waits for a change (long polling), seconds.
POLL_WAIT = 10.0


def _static(name: str) -> bytes:
    return resources.files("rainset.web").joinpath("static", name).read_bytes()


def make_app(board: Board, token: str, *, cookie: str = "rainset_token"):
    """The Starlette application serving ``board``; every request must carry ``token``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    expected = token.encode()

    def _good(value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), expected)

    class TokenGate:
        """ASGI middleware: 403 for any request without the run's token."""

        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http":
                return await self.app(scope, receive, send)
            from starlette.requests import Request

            req = Request(scope)
            header = req.headers.get("x-rainset-token")
            ok = _good(header) or _good(req.query_params.get("token")) or _good(req.cookies.get(cookie))
            if ok and req.method == "POST" and not _good(header):
                ok = False  # a cookie alone does not decide
            if not ok:
                return await PlainTextResponse("403: this page needs the token printed with its URL.",
                                               status_code=403, headers=NO_STORE)(scope, receive, send)
            return await self.app(scope, receive, send)

    async def index(request):
        html = _static("index.html").decode("utf-8").replace("__RAINSET_TITLE__", _html(board.title or "rainset review"))
        resp = Response(html, media_type="text/html; charset=utf-8", headers=NO_STORE)
        resp.set_cookie(cookie, token, httponly=True, samesite="strict", path="/")
        return resp

    async def static(request):
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("404", status_code=404)
        return Response(_static(name), media_type=STATIC[name], headers=NO_STORE)

    async def state(request):
        try:
            since = int(request.query_params.get("since", "-1"))
        except ValueError:
            since = -1
        if since == board.version:
            await run_in_threadpool(board.wait_version, since, POLL_WAIT)
        return JSONResponse(board.snapshot(), headers=NO_STORE)

    async def image(request):
        item = board.item(request.path_params["cid"])
        kind = request.path_params["kind"]
        if item is None:
            return PlainTextResponse("404: no such candidate", status_code=404)
        index = request.path_params.get("index", "0")
        if kind == "clean":
            data = item.images.clean()
        elif kind == "rainy" and index.isdigit():
            data = await run_in_threadpool(item.images.rainy, int(index))
        elif kind == "tier":
            data = item.images.tier(index)
        else:
            data = None
        if data is None:
            return PlainTextResponse("404: no such image", status_code=404)
        return Response(data, media_type="image/png", headers=NO_STORE)

    async def decide(request):
        try:
            body = json.loads(await request.body())
            cid, action = str(body["id"]), str(body["action"])
            reason = str(body.get("reason") or "")
            rev = body.get("rev")
            rev = int(rev) if rev is not None else None
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"ok": False, "message": "expected JSON {id, action, reason, rev}"}, status_code=400)
        ok, item, message = await run_in_threadpool(board.decide, cid, action, reason, expect_rev=rev)
        if item is None:
            return JSONResponse({"ok": False, "message": message}, status_code=404)
        return JSONResponse({"ok": ok, "message": message, "item": item.public(), "version": board.version},
                            status_code=200 if ok else 409, headers=NO_STORE)

    async def finish(request):
        if board.final:
            return JSONResponse({"ok": False, "message": "the run ends when every candidate is decided"},
                                status_code=409)
        board.finish(f"review closed; every change is in {REVIEW}")
        return JSONResponse({"ok": True}, headers=NO_STORE)

    routes = [
        Route("/", index),
        Route("/api/finish", finish, methods=["POST"]),
        Route("/static/{name}", static),
        Route("/api/state", state),
        Route("/api/image/{cid}/{kind}", image),
        Route("/api/image/{cid}/{kind}/{index}", image),
        Route("/api/decide", decide, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    return TokenGate(app)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ReviewServer:
    """The page for ``board``, served from a thread while the caller works.

    ``host``/``port`` as given; port 0 picks a free one (:attr:`port` is the real one). The
    socket is bound in the constructor, so a port in use is an error here, in the caller.
    """

    def __init__(self, board: Board, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None):
        import uvicorn

        self.board = board
        self.host = host
        self.token = token or secrets.token_urlsafe(24)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise InputError(f"cannot serve the review page on {host}:{port} ({exc.strerror or exc}).") from None
        sock.listen(64)
        self._sock = sock
        self.port = sock.getsockname()[1]
        app = make_app(board, self.token, cookie=f"rainset_token_{self.port}")
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="rainset-review-web", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> ReviewServer:
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        shown = self.host if self.host not in ("0.0.0.0", "::", "") else socket.gethostname()
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/?token={self.token}"

    def ssh_line(self) -> str:
        """How to reach the page from another machine (a tunnel to this one's loopback)."""
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - only for the hint
            user = "USER"
        return (f"ssh -N -L {self.port}:127.0.0.1:{self.port} {user}@{socket.gethostname()}  "
                f"then open http://127.0.0.1:{self.port}/?token={self.token}")

    def stop(self) -> None:
        self.board.close()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self) -> ReviewServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
