#!/usr/bin/python3
"""Slow benchmark origin for bench/plugins (scenario `aggregate`).

    origin_slow.py PORT [FACTOR]

HTTP/1.1 with keep-alive on 127.0.0.1:PORT, standard library only (asyncio).
GET /slow/N answers, after N milliseconds (0..10000), 200 with a small JSON
document: {"delay_ms": N, "path": "/slow/N"}. Anything else is 404. The
delay is an asyncio sleep, so concurrent requests wait in parallel: the
origin adds its N ms and little else, whatever the concurrency. FACTOR
(default 1) multiplies every delay: bench/p2c runs one origin 10x slower.
"""
import asyncio
import re
import sys

SLOW = re.compile(rb"^/slow/([0-9]{1,5})(\?.*)?$")
MAX_HEAD = 64 * 1024
FACTOR = 1.0


def response(status, reason, body, close):
    head = (
        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
        % (status, reason, len(body), "Connection: close\r\n" if close else "")
    )
    return head.encode("ascii") + body


def parse_head(head):
    """Returns (method, target, wants_close, body_length) of a request head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise ValueError("bad request line")
    method, target, version = parts
    close = version == b"HTTP/1.0"
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"connection":
            close = b"close" in value or (version == b"HTTP/1.0" and b"keep-alive" not in value)
        elif name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise ValueError("chunked request bodies are not supported")
    return method, target, close, length


async def handle(reader, writer):
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            try:
                method, target, close, length = parse_head(head[:-4])
            except ValueError:
                writer.write(response(400, "Bad Request", b'{"error":"bad request"}', True))
                await writer.drain()
                return
            if length:
                await reader.readexactly(length)
            m = SLOW.match(target)
            if m is None or method not in (b"GET", b"HEAD"):
                out = response(404, "Not Found", b'{"error":"not found"}', close)
            else:
                ms = min(int(m.group(1)), 10000)
                await asyncio.sleep(ms * FACTOR / 1000.0)
                body = b'{"delay_ms":%d,"path":"/slow/%d"}' % (ms, ms)
                out = response(200, "OK", body, close)
                if method == b"HEAD":
                    out = out[: len(out) - len(body)]
            writer.write(out)
            await writer.drain()
            if close:
                return
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port, limit=MAX_HEAD, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: origin_slow.py PORT [FACTOR]")
    if len(sys.argv) == 3:
        FACTOR = float(sys.argv[2])
    try:
        asyncio.run(main(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
