"""The server's guard: security headers, cross-site request refusal, the access token.

One pure ASGI middleware, in front of every route:

- every response gets a Content-Security-Policy without inline scripts or styles,
  ``frame-ancestors 'none'``, ``X-Content-Type-Options: nosniff`` and friends;
- a state-changing request (anything but GET/HEAD/OPTIONS) that a browser marks as coming from
  another site (``Sec-Fetch-Site``, else an ``Origin`` that is not this host) is refused with
  403 before its body is read; HTML forms also carry a token tied to the browser's cookie;
- with an access token configured, every request but the login page, the static files and
  the health check needs it (``Authorization: Bearer`` or the cookie the login page sets);
- each browser gets a random client cookie: its own recent results, its form token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CLIENT_COOKIE",
    "CONTENT_SECURITY_POLICY",
    "TOKEN_COOKIE",
    "GuardMiddleware",
    "csrf_token",
    "safe_next",
    "token_cookie_value",
]

CLIENT_COOKIE = "avajams_client"
TOKEN_COOKIE = "avajams_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}

#: Paths reachable without the access token.
_OPEN_PATHS = ("/static/", "/login", "/api/health", "/favicon.ico")


def _mac(secret: bytes, purpose: str, value: str) -> str:
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def csrf_token(secret: bytes, client_id: str) -> str:
    """The form token of one browser: an HMAC of its client cookie."""
    return _mac(secret, "csrf", client_id)[:32]


def token_cookie_value(secret: bytes, token: str) -> str:
    """What the login cookie holds: an HMAC of the token, never the token itself."""
    return _mac(secret, "login", token)


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this server, else ``/`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _valid_client_id(value: str | None) -> bool:
    return value is not None and len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def cross_site(headers: Headers) -> bool:
    """Whether a browser says this request comes from another site (or another origin)."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False  # not sent by a browser page (curl, scripts), or an old browser's GET
    if origin == "null":
        return True
    return urlsplit(origin).netloc.lower() != headers.get("host", "").lower()


class GuardMiddleware:
    """See the module docstring. ``secret`` keys the HMACs; ``token`` may be None."""

    def __init__(self, app: ASGIApp, *, secret: bytes, token: str | None) -> None:
        self.app = app
        self.secret = secret
        self.token = token
        self._token_cookie = token_cookie_value(secret, token) if token else None

    def authorised(self, headers: Headers, cookies: dict[str, str]) -> bool:
        """Whether the request carries the access token (always true without one)."""
        if self.token is None or self._token_cookie is None:
            return True
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(
            auth[7:].strip().encode(), self.token.encode()
        ):
            return True
        return hmac.compare_digest(
            cookies.get(TOKEN_COOKIE, "").encode(), self._token_cookie.encode()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = _cookies(headers)
        path: str = scope["path"]
        client_id = cookies.get(CLIENT_COOKIE)
        new_client = not _valid_client_id(client_id)
        if new_client:
            client_id = secrets.token_hex(16)
        state = scope.setdefault("state", {})
        state["client_id"] = client_id
        state["authorised"] = self.authorised(headers, cookies)
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    out.setdefault(name, value)
                if not path.startswith("/static/") and "cache-control" not in out:
                    out["cache-control"] = "no-store"
                if new_client:
                    out.append(
                        "set-cookie",
                        f"{CLIENT_COOKIE}={client_id}; Path=/; Max-Age=31536000; HttpOnly; "
                        f"SameSite=Lax{'; Secure' if secure else ''}",
                    )
            await send(message)

        if scope["method"] not in SAFE_METHODS and cross_site(headers):
            await _refuse(
                send_with_headers,
                403,
                "cross-site request refused: post from this server's own pages",
            )
            return
        if not state["authorised"] and not path.startswith(_OPEN_PATHS):
            if path.startswith("/api/") or scope["method"] not in SAFE_METHODS:
                await _refuse(
                    send_with_headers,
                    401,
                    "this server needs its access token: send 'Authorization: Bearer TOKEN' "
                    "or log in at /login",
                    extra=[(b"www-authenticate", b'Bearer realm="avajams"')],
                )
            else:
                query = scope.get("query_string", b"").decode("latin-1")
                target = path + (f"?{query}" if query else "")
                await _redirect(send_with_headers, f"/login?next={quote(target, safe='')}")
            return
        await self.app(scope, receive, send_with_headers)


def _cookies(headers: Headers) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for raw in headers.getlist("cookie"):
        try:
            jar.load(raw)
        except Exception:  # a malformed cookie header: ignore it, as browsers do
            continue
    return {name: morsel.value for name, morsel in jar.items()}


async def _refuse(
    send: Send, status: int, detail: str, *, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
