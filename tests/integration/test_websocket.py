"""WebSocket pass-through with a real client and server (python3-websockets)."""

import asyncio
import socket
import threading

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
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(5)

    async def _echo(self, ws, *args):
        path = getattr(ws, "path", None) or getattr(getattr(ws, "request", None), "path", "")
        self.handshakes.append(path)
        async for m in ws:
            if m == "close-please":
                await ws.close()
                return
            await ws.send(("echo:" + m) if isinstance(m, str) else m)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.server = await websockets.serve(self._echo, "127.0.0.1", self.port, max_size=None)
            self.ready.set()
            await self.server.wait_closed()

        self.loop.run_until_complete(main())

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.thread.join(5)


@pytest.fixture
def ws_gateway(gateway_factory):
    srv = EchoServer()
    port = h.free_port()
    cfg = h.gateway_config(port, {"ws": h.upstream_conf(["127.0.0.1:%d" % srv.port])},
                           [dict(h.route("ws", "ws", {"path_prefix": "/ws"}), websocket=True),
                            h.route("plain", "ws", {"path_prefix": "/plain"})],
                           limits={"idle_timeout": "2s"})
    gateway_factory(cfg)
    yield port, srv
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
