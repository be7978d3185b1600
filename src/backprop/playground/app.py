"""The playground's web app: the page, its static files, the token, and one WebSocket per page.

Starlette (the ``playground`` extra) serves ``static/`` and one WebSocket, ``/ws``. Every request
needs the token: in the URL (``?token=...``), or, for the page's own files, in the cookie the
page's first load sets. A WebSocket must also come from the page's own origin. A refused
request gets 403. Each WebSocket owns one :class:`~backprop.playground.session.Session`: the
page's messages (``docs/playground.md``) are checked, handled one at a time on a worker thread,
and answered with JSON and, for a frame, one binary message of heatmaps. Closing the page
ends its session.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import math
import secrets
import tempfile
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from . import passes
from .data2d import to_csv
from .frames import Framer
from .protocol import DEFAULT_CONFIG, LIMITS, ProtocolError, check_config, parse_message
from .session import Session, TrainingDiverged

STATIC = Path(__file__).parent / "static"
COOKIE = "backprop_playground_token"
#: seconds of training between two frames while playing (with a frame of about 10 ms: ~30 frames/s)
TRAIN_SLICE = 0.02
#: samples the gradient check runs the per-parameter reference on (its scalar loops are slow)
GRADCHECK_SAMPLES = 50
#: at most this many pages train at once
MAX_SESSIONS = 8

_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def new_token() -> str:
    """A random token for the URL (192 bits)."""
    return secrets.token_urlsafe(24)


class TokenGuard:
    """ASGI middleware: 403 for an HTTP request without the token (query or cookie), and for a
    WebSocket without the token in its query or from another origin than the page's."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token

    def _has_token(self, scope: dict[str, Any], cookie_ok: bool) -> bool:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = [query.get("token", [""])[0]]
        if cookie_ok:  # each server's cookie has a name of its own (cookies ignore the port)
            cookies = SimpleCookie(_header(scope, b"cookie"))
            given += [m.value for name, m in cookies.items() if name.startswith(COOKIE)]
        return any(g and hmac.compare_digest(g.encode(), self.token.encode()) for g in given)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from starlette.responses import PlainTextResponse

        static = scope.get("path", "").startswith("/static/")   # the page's files: the cookie will do
        if scope["type"] == "http" and not self._has_token(scope, cookie_ok=static):
            await PlainTextResponse("403: the playground's URL carries a token; open the URL "
                                    "`backprop playground` printed", status_code=403)(scope, receive, send)
            return
        if scope["type"] == "websocket" and not (self._has_token(scope, cookie_ok=False) and _same_origin(scope)):
            await receive()  # websocket.connect
            await send({"type": "websocket.http.response.start", "status": 403, "headers": []}
                       if "websocket.http.response" in scope.get("extensions", {}) else
                       {"type": "websocket.close", "code": 1008})
            if "websocket.http.response" in scope.get("extensions", {}):
                await send({"type": "websocket.http.response.body", "body": b"403: token or origin refused"})
            return
        await self.app(scope, receive, send)


def _same_origin(scope: dict[str, Any]) -> bool:
    """Whether the WebSocket's ``Origin`` is the page's own (``http://`` + its ``Host``)."""
    origin, host = _header(scope, b"origin"), _header(scope, b"host")
    return bool(origin) and bool(host) and hmac.compare_digest(origin, f"http://{host}")


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def create_app(token: str, *, config: dict[str, Any] | None = None, max_sessions: int = MAX_SESSIONS) -> Any:
    """The ASGI app: the page at ``/``, its files under ``/static``, the WebSocket at ``/ws``.

    Args:
        token: the token every request must carry (see :class:`TokenGuard`).
        config: settings every new page starts from (over ``DEFAULT_CONFIG``), e.g. a seed.

    Raises:
        ProtocolError: ``config`` holds a setting that is unknown or out of range.
        max_sessions: pages that may be open at once; one more is told so and closed.
    """
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, Response
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles
    from starlette.websockets import WebSocket

    start = check_config(config or {}, DEFAULT_CONFIG)   # a bad start refused here, not per page
    sessions: set[int] = set()

    async def index(request: Any) -> Response:
        response = FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": _CSP,
                                                                 "Cache-Control": "no-store"})
        response.set_cookie(f"{COOKIE}_{token[:8]}", token, httponly=True, samesite="strict")
        return response

    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        if len(sessions) >= max_sessions:
            await ws.send_json({"type": "error", "field": "session",
                                "message": f"at most {max_sessions} pages may train at once; close one and reload"})
            await ws.close(code=1013)
            return
        session = Session(start)
        sessions.add(id(session))
        try:
            await _serve(ws, session)
        finally:
            sessions.discard(id(session))

    app = Starlette(routes=[Route("/", index), Mount("/static", StaticFiles(directory=STATIC)),
                            WebSocketRoute("/ws", socket)])
    app.state.sessions = sessions
    return TokenGuard(app, token)


async def _serve(ws: Any, session: Session) -> None:
    """Answer one page until it goes: its messages in order, and frames while it plays."""
    from starlette.websockets import WebSocketDisconnect

    framer = Framer()
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=16)

    async def read() -> None:
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await queue.put(message.get("text") if message.get("text") is not None else "<binary>")
        finally:
            await queue.put(None)

    async def send(out: list[Any]) -> None:
        for item in out:
            try:
                await (ws.send_bytes(item) if isinstance(item, bytes) else ws.send_text(to_json(item)))
            except (RuntimeError, OSError) as err:  # the page went while a frame was on its way
                raise WebSocketDisconnect(1001) from err

    reader = asyncio.create_task(read())
    try:
        await send([{"type": "hello", "limits": LIMITS, "defaults": DEFAULT_CONFIG},
                    framer.data_message(session), *_frame(session, framer)])
        while True:
            if session.playing:
                while not queue.empty():
                    raw = queue.get_nowait()
                    if raw is None:
                        return
                    await send(await asyncio.to_thread(handle, session, framer, raw))
                if session.playing:
                    try:
                        await asyncio.to_thread(session.train_for, TRAIN_SLICE)
                    except TrainingDiverged as err:
                        await send([{"type": "error", "field": "training", "message": str(err)}])
                    session.playing = session.playing and not session.finished()
                    await send(await asyncio.to_thread(_frame, session, framer))
                await asyncio.sleep(0)
            else:
                raw = await queue.get()
                if raw is None:
                    return
                await send(await asyncio.to_thread(handle, session, framer, raw))
    except WebSocketDisconnect:
        return
    finally:
        reader.cancel()


def to_json(message: dict[str, Any]) -> str:
    """``message`` as JSON text; a NaN or an infinity (a diverged run's loss) becomes null, which
    the page shows as "–" (JSON has no such numbers)."""
    try:
        return json.dumps(message, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(message), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _frame(session: Session, framer: Framer) -> list[Any]:
    session.record()
    message, blob = framer.frame(session)
    return [message, blob]


def handle(session: Session, framer: Framer, raw: str) -> list[Any]:
    """The answers to one message from the page: JSON objects and a frame's bytes; a bad
    message is answered with ``{"type": "error", ...}`` and changes nothing."""
    try:
        msg = parse_message(raw)
        return _dispatch(session, framer, msg)
    except ProtocolError as err:
        return [err.to_json()]
    except TrainingDiverged as err:
        return [{"type": "error", "field": "training", "message": str(err)}, *_frame(session, framer)]
    except ValueError as err:  # the library's own checks (ConfigError, ...) name the argument
        return [{"type": "error", "field": "message", "message": str(err)}]


def _dispatch(session: Session, framer: Framer, msg: dict[str, Any]) -> list[Any]:
    kind = msg["type"]
    if kind == "config":
        session.update_config(msg["config"])
        return [framer.data_message(session), *_frame(session, framer)]
    if kind == "play":
        if session.finished():
            raise ProtocolError("epochs", f"the {session.config['epochs']} epochs are trained: reset, or set "
                                "epochs to 0 (no limit) or more")
        session.playing = True
        return []
    if kind == "pause":
        session.playing = False
        return _frame(session, framer)
    if kind == "step":
        session.train(msg["steps"])
        return _frame(session, framer)
    if kind in ("reset", "regenerate", "csv"):
        if kind == "reset":
            session.reset()
        elif kind == "regenerate":
            session.regenerate()
        else:
            session.load_csv(msg["text"])
        return [framer.data_message(session), *_frame(session, framer)]
    if kind == "select":
        session.select(msg["sample"])
        return _frame(session, framer)
    if kind == "neuron":
        _ensure_selected(session)
        p = passes.selected_pass(session)
        assert p is not None
        return [passes.chain_rule(session, p, msg["layer"], msg["index"]), *_frame(session, framer)]
    if kind == "step_sample":
        index = _ensure_selected(session, train_only=True)
        walk = passes.step_sample(session, index)
        return [walk, *_frame(session, framer)]
    if kind == "gradcheck":
        check = passes.gradcheck_entry(session, msg["layer"], msg["param"], msg["row"], msg["col"],
                                       max_samples=GRADCHECK_SAMPLES)
        return [check]
    if kind == "set_param":
        session.set_param(msg["layer"], msg["param"], msg["row"], msg["col"], msg["value"])
        return _frame(session, framer)
    return [_export(session, msg["what"])]


def _ensure_selected(session: Session, train_only: bool = False) -> int:
    """The selected sample's index; when none is (or, with ``train_only``, a test one is),
    select the first sample of the last mini-batch (or training sample 0)."""
    if session.selected is None or (train_only and session.selected[0] != "train"):
        index = int(session.last_batch[0]) if session.last_batch.size else 0
        session.select({"set": "train", "index": index})
    assert session.selected is not None
    return session.selected[1]


def _export(session: Session, what: str) -> dict[str, Any]:
    """The trained network as a model file ``bp.load`` reads, or the data as CSV, base64."""
    if what == "csv":
        return {"type": "file", "name": "playground-data.csv", "mime": "text/csv",
                "base64": base64.b64encode(to_csv(session.data).encode()).decode()}
    from ..io import save

    with tempfile.TemporaryDirectory() as tmp:
        path = save(session.net, Path(tmp) / "playground.safetensors",
                    metadata={"loss": "cross_entropy" if session.config["loss"] == "cross_entropy" else "quadratic",
                              "playground": session.config})
        blob = path.read_bytes()
    return {"type": "file", "name": "playground.safetensors", "mime": "application/octet-stream",
            "base64": base64.b64encode(blob).decode()}
