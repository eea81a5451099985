"""What every response of the portal carries, and what every request may send: security
headers (a Content-Security-Policy without any script, no framing, no sniffing) and a bound on
a request's body, counted while it streams in (a 413 before the limit is passed, not after)."""

from __future__ import annotations

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class Guard:
    """Pure ASGI middleware around the app."""

    def __init__(self, app, max_body: int):
        self.app, self.max_body = app, max_body

    @property
    def state(self):
        return self.app.state

    @property
    def routes(self):
        return self.app.routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return await _too_large(send)
        seen = 0
        over = False

        async def counted():
            # past the bound the app is told the client went away: it stops reading, and the
            # answer it would give is replaced by a 413 below
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def with_headers(message):
            if over:
                return
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        try:
            await self.app(scope, counted, with_headers)
        except Exception:
            if not over:
                raise
        if over:
            await _too_large(send)


async def _too_large(send) -> None:
    body = b"Unggahan terlalu besar / Upload too large"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
