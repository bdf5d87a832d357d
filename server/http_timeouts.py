"""Slow-client timeouts for uvicorn's HTTP/1.1 protocols.

uvicorn (0.54) times out idle keep-alive connections, but not a request
being received: a client sending its headers or body a byte at a time holds
a connection (a socket, a file descriptor, memory) for as long as it likes.
The protocol classes here close such connections:

- headers: the request line and headers must arrive within
  `header_timeout_s`, counted from the connection's start for its first
  request and from the first byte of each later one, so a kept-alive
  connection cannot dribble a second request either;
- body: while a request body is incomplete, no `body_timeout_s` may pass
  without a byte of it (a slow but steady upload goes through).

The client gets a 408 when nothing of a response to it has been sent (and
it sent something: an empty connection is just closed, as an idle
keep-alive one is); otherwise the connection is cut.

The cost is one timer per connection, armed with `loop.call_at` when the
connection opens and cancelled once its first request is in, plus a few
attribute stores per request; a timer is armed again only for a request
whose headers or body do not arrive in one read. Nothing wraps the app's
`receive`.

Choosing the timeouts: uvicorn takes a protocol class (`Config(http=...)`),
and builds one instance per connection with a fixed signature, so the
timeouts are class attributes. In this process, `protocol_class()` makes a
subclass per pair of values (`flywheel up`, LiveServer). `flywheel serve
--workers N` needs something its spawned workers can import by name, so it
passes the import string `HTTP_PROTOCOL` and each worker's app factory calls
`configure()` with the settings it loads from the environment.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from flywheel.server.settings import Settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is absent: uvicorn then serves with h11
    HttpToolsProtocol = None

_DEFAULTS = Settings()

# Where a connection is (ints: compared on every request).
_IDLE = 0  # nothing owed by the client: between requests, or the app's turn
_WAITING = 1  # a new connection, not a byte received yet
_HEADERS = 2  # a request has begun, its headers are incomplete
_BODY = 3  # the headers are in, the body is not

_SLACK_S = 0.005  # a timer firing this close to its deadline counts as on time


class _SlowClientTimeouts:
    """The timer logic shared by both protocols (mixed into uvicorn's classes)."""

    header_timeout_s: float = _DEFAULTS.http_header_timeout_s
    body_timeout_s: float = _DEFAULTS.http_body_timeout_s

    _phase = _IDLE
    _since = 0.0  # when the current phase's clock started (last body byte, in _BODY)
    _timer: asyncio.TimerHandle | None = None

    # Mixed in first, so these run around uvicorn's own (super() is the protocol's).
    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_new_connection()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_watching()
        super().connection_lost(exc)

    def _watch_new_connection(self) -> None:
        self._phase = _WAITING
        self._since = self.loop.time()
        self._timer = self.loop.call_at(self._since + self.header_timeout_s, self._check)

    def _stop_watching(self) -> None:
        self._phase = _IDLE
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _watch(self) -> None:
        """After bytes were received: keep a timer only while the client owes us some."""
        phase = self._phase
        if phase == _IDLE:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        if phase == _BODY:
            self._since = self.loop.time()  # body bytes (or the end of the headers) just came
        if self._timer is None:
            if phase == _HEADERS:  # a request begun in this read: its clock starts now
                self._since = self.loop.time()
            limit = self.body_timeout_s if phase == _BODY else self.header_timeout_s
            self._timer = self.loop.call_at(self._since + limit, self._check)

    def _check(self) -> None:
        self._timer = None
        phase = self._phase
        if phase == _IDLE or self.transport.is_closing():
            return
        now = self.loop.time()
        if phase == _BODY and self.flow.read_paused:
            self._since = now  # the app is not reading the body yet: the wait is ours
        limit = self.body_timeout_s if phase == _BODY else self.header_timeout_s
        deadline = self._since + limit
        if deadline - now > _SLACK_S:  # progress since the timer was set: wait the rest
            self._timer = self.loop.call_at(deadline, self._check)
            return
        self._expire(phase)

    def _expire(self, phase: int) -> None:
        cycle = self.cycle
        if phase == _BODY and cycle is not None:
            untouched = not cycle.response_started
        else:  # the cycle, if any, is the previous request's
            untouched = cycle is None or cycle.response_complete
        if cycle is not None and not cycle.response_complete:
            # The app's next receive() says "disconnected"; its sends are dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        self._phase = _IDLE
        if self.logger.isEnabledFor(logging.DEBUG):  # thousands of these are an attack, not news
            what = "body" if phase == _BODY else "headers"
            self.logger.debug("%s - closing a slow client (its request %s timed out)",
                              self.client, what)
        if untouched and phase != _WAITING:
            self.transport.write(self._timeout_response())
        if untouched or cycle.response_complete:
            self.transport.close()  # what is written still goes out
        else:
            self.transport.abort()  # a response was under way: it cannot be finished

    def _timeout_response(self) -> bytes:
        body = b"Request Timeout"
        head = [b"HTTP/1.1 408 Request Timeout\r\n"]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: text/plain; charset=utf-8\r\n",
                 b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body]
        return b"".join(head)


class H11TimeoutProtocol(_SlowClientTimeouts, H11Protocol):
    """uvicorn's h11 protocol with slow-client timeouts (used when httptools is absent)."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()  # a pipelined request, now parsed, may be incomplete

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._stop_watching()
        super().handle_websocket_upgrade(event)

    def _follow(self) -> None:
        """Derive the phase from h11's view of the client (it has no parser callbacks)."""
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._phase = _BODY
        elif state is h11.IDLE:
            if self.conn.trailing_data[0]:  # part of a request line or headers
                if self._phase in (_IDLE, _BODY):  # a later request: its clock starts now
                    self._since = self.loop.time()
                self._phase = _HEADERS
            elif self._phase != _WAITING:
                self._phase = _IDLE
        else:
            self._phase = _IDLE
        self._watch()


if HttpToolsProtocol is not None:

    class HttpToolsTimeoutProtocol(_SlowClientTimeouts, HttpToolsProtocol):
        """uvicorn's httptools protocol with slow-client timeouts."""

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch()

        def handle_websocket_upgrade(self) -> None:
            self._stop_watching()
            super().handle_websocket_upgrade()

        # Parser callbacks (called from within data_received), kept to a store each:
        # _watch() starts a later request's clock (the first one's started with the connection).
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._phase = _HEADERS

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._phase = _BODY

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._phase = _IDLE
            if self._timer is not None:  # a request that took several reads
                self._timer.cancel()  # (a next one, begun in this read, gets its own clock)
                self._timer = None

    HttpProtocol: type[asyncio.Protocol] = HttpToolsTimeoutProtocol
else:
    HttpProtocol = H11TimeoutProtocol

HTTP_PROTOCOL = f"{__name__}:HttpProtocol"  # for uvicorn.run(..., http=HTTP_PROTOCOL)


def protocol_class(header_timeout_s: float, body_timeout_s: float) -> type[asyncio.Protocol]:
    """`HttpProtocol` with these timeouts, for `uvicorn.Config(http=...)` in this process."""
    attrs = {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s,
             "__module__": __name__}
    return type(HttpProtocol.__name__, (HttpProtocol,), attrs)


def configure(settings: Settings) -> None:
    """Set `HttpProtocol`'s timeouts from `settings` (in a `flywheel serve` worker)."""
    HttpProtocol.header_timeout_s = settings.http_header_timeout_s
    HttpProtocol.body_timeout_s = settings.http_body_timeout_s
