"""Who may ask a server anything: the token, browser sessions, origins and Host names.

An ASGI middleware in front of ``artgraph serve`` and ``artgraph view``:

- **Host.** On loopback, a request must name a loopback host: a hostile web page
  whose own name was pointed at 127.0.0.1 (DNS rebinding) is refused.
- **Origin.** A request a browser sends from a page of another origin is refused,
  so a web page you visit cannot drive your server. Behind a reverse proxy, the
  public address (``--allow-origin https://art.example.org``) is let through, its
  host name too.
- **Token.** With a token, every route but the public ones needs it: as
  ``Authorization: Bearer TOKEN``, or as the session cookie a browser got by
  opening a page with ``?token=TOKEN`` (as Jupyter does). The cookie holds a
  digest of the token, never the token; it is HttpOnly and SameSite=Strict, and
  the page is reloaded without the token in its address.

Public: ``/health``, the static files and the page shells (``/``, ``/view/…``),
which hold no job data — that comes from the routes the token guards.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def is_page(path: str) -> bool:
    """The HTML shells of the viewer."""
    return path == "/" or path.startswith("/view/")


def is_public(path: str) -> bool:
    return path == "/health" or path.startswith("/static/") or is_page(path)


def error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Every refusal and error of the servers: ``{"detail": one line}``."""
    return JSONResponse({"detail": detail}, status_code=status, headers=dict(headers or {}))


class Guard:
    """ASGI middleware; pure ASGI rather than a FastAPI middleware so that streams pass untouched."""

    def __init__(self, app: ASGIApp, *, token: str | None, loopback: bool, origins: tuple[str, ...] = ()) -> None:
        self.app, self.token, self.loopback = app, token, loopback
        #: Pages of these origins (a reverse proxy's public address) may ask, and their host
        #: names are accepted as Host on a loopback server.
        self.origins = frozenset(o.rstrip("/") for o in origins)
        self.hosts = LOOPBACK_NAMES | {hostname(urlsplit(o).netloc) for o in self.origins}
        self._session = session_digest(token) if token else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        answer = self.answer(scope, headers)
        if answer is not None:
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def cookie_name(self, scope: Scope) -> str:
        # Cookies ignore ports: two servers on one machine would take each other's.
        server = scope.get("server") or ("", 0)
        return f"artgraph-{server[1]}"

    def answer(self, scope: Scope, headers: dict[str, str]) -> Response | None:
        """A response that ends the request here (a refusal, a redirect), or None to go on."""
        host = headers.get("host", "")
        if self.loopback and hostname(host) not in self.hosts:
            return error(403, f"Host {host!r} is not this machine; this server answers only on loopback")
        origin = headers.get("origin")
        if origin is not None and origin != f"{scope.get('scheme', 'http')}://{host}" and origin not in self.origins:
            return error(403, f"requests from the page at {origin!r} are refused (not this server's origin)")
        if self.token is None:
            return None
        path = str(scope.get("path", ""))
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = dict(query).get("token")
        if is_page(path) and given is not None and self._matches(given):
            # Opened with ?token=: a session for this browser, and the address without the token.
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            redirect = RedirectResponse(path + (f"?{rest}" if rest else ""), status_code=303)
            redirect.set_cookie(self.cookie_name(scope), self._session, httponly=True, samesite="strict", path="/")
            return redirect
        if is_public(path) or self._authorised(scope, headers):
            return None
        return error(
            401,
            "this server needs its token: send 'Authorization: Bearer TOKEN', "
            "or open the address it printed (…?token=…) in the browser",
            {"WWW-Authenticate": "Bearer"},
        )

    def _matches(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.strip().encode(), self.token.encode())

    def _authorised(self, scope: Scope, headers: dict[str, str]) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self._matches(given):
            return True
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no session
            return False
        morsel = cookies.get(self.cookie_name(scope))
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self._session.encode())


def session_digest(token: str) -> str:
    """What a browser's session cookie holds: derived from the token, useless elsewhere."""
    return hmac.new(token.encode(), b"artgraph browser session", hashlib.sha256).hexdigest()


def hostname(host: str) -> str:
    """The name in a Host header, without its port (``[::1]:8765`` -> ``::1``)."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
