"""WebSocket pass-through with a real client and server (python3-websockets)."""

import asyncio
import base64
import os
import socket
import threading
import time

import pytest
import websockets

import tg_harness as h


class EchoServer:
    """A real WebSocket server in its own thread and event loop."""

    def __init__(self):
        self.port = h.free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.handshakes = []
        self.upgrade_headers = []  # the Upgrade values of each handshake, as received
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    async def _echo(self, ws, *args):
        path = getattr(ws, "path", None) or getattr(getattr(ws, "request", None), "path", "")
        self.handshakes.append(path)
        hs = getattr(ws, "request_headers", None) or getattr(getattr(ws, "request", None), "headers", None)
        self.upgrade_headers.append(hs.get_all("Upgrade") if hs is not None else None)
        if path.startswith("/ws/stream/"):
            # /ws/stream/<count>/<interval ms>: server-to-client only, then silence
            count, interval = (int(x) for x in path.split("/")[3:5])
            for i in range(count):
                await asyncio.sleep(interval / 1000)
                await ws.send("tick %d" % i)
            await ws.wait_closed()
            return
        async for m in ws:
            if m == "close-please":
                await ws.close()
                return
            await ws.send(("echo:" + m) if isinstance(m, str) else m)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            # No pings: they would be traffic the idle timeout tests do not expect.
            self.server = await websockets.serve(self._echo, "127.0.0.1", self.port, max_size=None,
                                                 ping_interval=None)
            self.ready.set()
            await self.server.wait_closed()

        self.loop.run_until_complete(main())

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.thread.join(5)


def start_ws_gateway(gateway_factory, srv, idle):
    port = h.free_port()
    cfg = h.gateway_config(port, {"ws": h.upstream_conf(["127.0.0.1:%d" % srv.port])},
                           [dict(h.route("ws", "ws", {"path_prefix": "/ws"}), websocket=True),
                            h.route("plain", "ws", {"path_prefix": "/plain"})],
                           limits={"idle_timeout": idle})
    gateway_factory(cfg)
    return port


@pytest.fixture
def ws_gateway(gateway_factory):
    srv = EchoServer()
    yield start_ws_gateway(gateway_factory, srv, "2s"), srv
    srv.stop()


@pytest.fixture
def ws_gateway_1s(gateway_factory):
    srv = EchoServer()
    yield start_ws_gateway(gateway_factory, srv, "1s"), srv
    srv.stop()


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_messages_pass_both_ways(ws_gateway):
    port, srv = ws_gateway

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/ws/chat" % port, max_size=None) as ws:
            await ws.send("hello")
            assert await ws.recv() == "echo:hello"
            big = bytes(range(256)) * 8192  # 2 MiB: backpressure both ways
            await ws.send(big)
            assert await ws.recv() == big

    run(go())
    assert srv.handshakes == ["/ws/chat"]


def test_server_close_reaches_client(ws_gateway):
    port, srv = ws_gateway

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/ws/x" % port) as ws:
            await ws.send("close-please")
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()

    run(go())


def test_idle_tunnel_is_closed(ws_gateway):
    port, srv = ws_gateway

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/ws/x" % port, ping_interval=None) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 6)

    run(go())


def test_other_routes_strip_upgrade(ws_gateway):
    port, srv = ws_gateway

    async def go():
        with pytest.raises(websockets.InvalidStatusCode):
            async with websockets.connect("ws://127.0.0.1:%d/plain/x" % port):
                pass

    run(go())
    assert srv.handshakes == []


def test_post_with_upgrade_is_not_tunnelled(ws_gateway):
    port, srv = ws_gateway
    with h.Conn(port) as c:
        c.send(b"POST /ws/x HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
               b"Content-Length: 0\r\n\r\n")
        r = c.read_response()
        assert r.status != 101


# ------------------------------------------------------- Upgrade token lists ---
def handshake(conn, upgrade, connection="Upgrade", target="/ws/x"):
    key = base64.b64encode(os.urandom(16)).decode()
    conn.send(("GET %s HTTP/1.1\r\nHost: t\r\nConnection: %s\r\nUpgrade: %s\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (target, connection, upgrade, key)).encode("latin-1"))
    return conn.read_response()


def echo_roundtrip(conn, text):
    """One masked text frame out, the server's echo frame back."""
    mask = os.urandom(4)
    data = text.encode()
    conn.send(bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
    head = conn.read_exact(2)
    assert head[0] == 0x81, head
    return conn.read_exact(head[1] & 0x7f).decode()


@pytest.mark.parametrize("connection,upgrade", [
    ("Upgrade", "WebSocket"),
    ("upgrade", "WEBSOCKET"),
    ("UPGRADE", "websocket"),
    ("keep-alive, Upgrade", "websocket"),
    ("Upgrade", "h2c, websocket"),
    ("Upgrade", "websocket , HTTP/2.0"),
])
def test_upgrade_tokens_case_insensitive_and_only_websocket_forwarded(ws_gateway, connection, upgrade):
    """RFC 9110 7.8: Upgrade is a list of case-insensitive tokens; the upstream is offered
    websocket and nothing else."""
    port, srv = ws_gateway
    with h.Conn(port) as c:
        r = handshake(c, upgrade, connection)
        assert r.status == 101, r
        assert (r.header("upgrade") or "").lower() == "websocket", r.headers
        assert echo_roundtrip(c, "hi") == "echo:hi"
    assert srv.upgrade_headers == [["websocket"]], srv.upgrade_headers


@pytest.mark.parametrize("upgrade", ["websocketx", "notwebsocket", "websocket/13", "h2c",
                                     "web socket, websocket", "\"websocket\"", "websocket;q=1"])
def test_other_upgrade_tokens_are_not_tunnelled(gateway_factory, upstream_factory, upgrade):
    """Not a websocket token (or not a valid protocol list): an ordinary GET, Upgrade removed."""
    up = upstream_factory("up")
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])},
                           [dict(h.route("ws", "up", {"path_prefix": "/ws"}), websocket=True)])
    gateway_factory(cfg)
    with h.Conn(port) as c:
        r = handshake(c, upgrade)
        assert r.status == 200, r
    hs = up.records[-1]["headers"]
    assert not [v for n, v in hs if n.lower() == "upgrade"], hs
    assert not [v for n, v in hs if n.lower() == "connection" and "upgrade" in v.lower()], hs


@pytest.mark.parametrize("answer", ["h2c", "websocket, h2c", None])
def test_upstream_101_to_another_protocol_is_502(gateway_factory, upstream_factory, answer):
    up = upstream_factory("up")
    up.raw["/ws/x"] = (b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n" +
                       (b"Upgrade: %s\r\n" % answer.encode() if answer else b"") + b"\r\n", True)
    port = h.free_port()
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address], retries=0)},
                           [dict(h.route("ws", "up", {"path_prefix": "/ws"}), websocket=True)])
    gateway_factory(cfg)
    with h.Conn(port) as c:
        r = handshake(c, "websocket")
        assert r.status == 502, r
def test_server_stream_keeps_a_silent_client_open(ws_gateway_1s):
    """Idle means no byte in either direction: a client that only listens to a
    stream of server messages for several idle periods keeps its tunnel."""
    port, srv = ws_gateway_1s
    count, interval_ms = 14, 250  # 3.5 s: three and a half idle periods

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/ws/stream/%d/%d" % (port, count, interval_ms),
                                      ping_interval=None) as ws:
            got = []
            for _ in range(count):
                got.append(await asyncio.wait_for(ws.recv(), 3))
            assert got == ["tick %d" % i for i in range(count)]
            # Then silence both ways: closed after the idle timeout.
            t0 = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return time.monotonic() - t0

    quiet = run(go())
    assert 0.7 <= quiet < 2.5, quiet


def test_silent_tunnel_closes_after_idle_timeout(ws_gateway_1s):
    port, srv = ws_gateway_1s

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/ws/x" % port, ping_interval=None) as ws:
            t0 = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return time.monotonic() - t0

    quiet = run(go())
    assert 0.9 <= quiet < 2.5, quiet


def test_client_traffic_keeps_tunnel_open(ws_gateway_1s):
    port, srv = ws_gateway_1s

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/ws/x" % port, ping_interval=None) as ws:
            for i in range(10):  # 3 s of a message every 300 ms
                await ws.send("m%d" % i)
                assert await asyncio.wait_for(ws.recv(), 2) == "echo:m%d" % i
                await asyncio.sleep(0.3)

    run(go())
