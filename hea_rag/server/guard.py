"""Who may use the server: the token on every request (page, assets, API), the Host header on a
loopback server without one, and the Origin of every request that changes something.

The page gets the token once in its address (`/?token=...`); the server answers with a cookie
(HttpOnly, SameSite=Strict) and a redirect to the bare address, so the token leaves the address
bar and the page's own requests carry it. API clients send `Authorization: Bearer TOKEN`.
"""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from hea_rag.server.settings import is_loopback

COOKIE = "hea_rag_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Guard:
    """ASGI middleware: refuses a request before any route sees it."""

    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is None and self.token and self._token_in_query(scope):
            refusal = self._login(scope)
        if refusal is not None:
            return await refusal(scope, receive, send)
        return await self.app(scope, receive, send)

    def _refusal(self, scope, headers: dict[str, str]):
        from starlette.responses import JSONResponse

        if scope["method"] not in SAFE_METHODS and not same_origin(headers):
            return JSONResponse({"error": "cross-site request refused"}, 403)
        if not self.token:
            if not is_loopback(urlsplit("//" + headers.get("host", "")).hostname or ""):
                return JSONResponse({"error": "unknown Host: use 127.0.0.1 or localhost"}, 421)
            return None
        if self._token_in_query(scope) or self._matches(presented_token(headers)):
            return None
        return JSONResponse({"error": "a valid token is needed: send `Authorization: Bearer "
                                      "TOKEN`, or open the page at /?token=TOKEN"}, 401,
                            headers={"WWW-Authenticate": "Bearer"})

    def _matches(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.token.encode())

    def _token_in_query(self, scope) -> bool:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return scope["path"] == "/" and self._matches((query.get("token") or [None])[0])

    def _login(self, scope):
        """The token from the page's address becomes a cookie; the address loses it."""
        from starlette.responses import RedirectResponse

        response = RedirectResponse("/", 303)
        response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict",
                            secure=scope.get("scheme") == "https")
        return response


def presented_token(headers: dict[str, str]) -> str | None:
    """The token of a bearer Authorization header, else of the page's cookie."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is no token
        return None
    return cookie[COOKIE].value if COOKIE in cookie else None


def same_origin(headers: dict[str, str]) -> bool:
    """No Origin (curl, scripts) or one naming this very host: a page elsewhere cannot post
    uploads or questions here through the user's browser."""
    origin = headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()
