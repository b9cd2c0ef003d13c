"""Who may read a build: the operator's SHEEN_API_TOKEN reads every build; the read token that
`POST /api/builds` returns reads that one build. Previews stay public (unguessable ids)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse

READ_TOKEN_CONTEXT = b"sheen build read token v1:"


def read_token(ingress_secret: str, build_id: str) -> str:
    """The build's read token, derived from the ingress secret so that nothing secret is
    stored and a repeated request gets the same token back; rotating the secret revokes all."""
    digest = hmac.new(
        ingress_secret.encode(), READ_TOKEN_CONTEXT + build_id.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def presented_token(request: Request) -> str | None:
    """`Authorization: Bearer …`, or `?token=` for clients that cannot set headers
    (a browser's EventSource)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token") or None


def unauthorized(
    what: str = "send SHEEN_API_TOKEN or the build's read token as a bearer token",
) -> JSONResponse:
    return JSONResponse(
        {"error": f"unauthorized: {what}"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="sheen"'},
    )


class ReadAccess:
    def __init__(self, api_token: str, ingress_secret: str) -> None:
        self.api_token = api_token
        self.ingress_secret = ingress_secret

    def allows(self, request: Request, build_id: str) -> bool:
        """Compared in constant time; with neither secret set, nobody reads over HTTP."""
        token = presented_token(request)
        if token is None:
            return False
        candidates = [self.api_token]
        if self.ingress_secret:
            candidates.append(read_token(self.ingress_secret, build_id))
        matches = [hmac.compare_digest(token.encode(), c.encode()) for c in candidates if c]
        return any(matches)

    def allows_operator(self, request: Request) -> bool:
        """Only SHEEN_API_TOKEN (reads across builds, such as a project's versions)."""
        token = presented_token(request)
        if token is None or not self.api_token:
            return False
        return hmac.compare_digest(token.encode(), self.api_token.encode())
