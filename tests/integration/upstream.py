"""A scriptable HTTP/1.1 origin server for the tollgate integration tests.

Threaded, raw sockets, keep-alive and pipelining aware (one buffered reader per
connection, so bytes of the next request that arrive with the current one are
kept). It counts accepted connections, received request heads and completed
requests, and records every request it saw.

Behaviour is chosen by the request path: the first path segment that is one of
the keywords below wins (so "/users/delay/200" and "/delay/200" are the same):

  /status/NNN     echo with status NNN
  /delay/MS       sleep MS milliseconds, then echo
  /chunked/N      chunked response of N chunks (data: chunked_payload(N))
  /bytes/N        N bytes of pattern_bytes(), Content-Length, 64 KiB writes
  /close-mid      headers with Content-Length: 1000, 10 bytes, then close
  /no-length[/N]  no Content-Length, N (default 100000) pattern bytes, close
  /head-test      Content-Length: 11, body "hello world" unless HEAD
  /204            204 with a bogus "Content-Length: 5" and no body
  /204junk        204 with "Content-Length: 5", then "hello", then close
  /304            304 with "Content-Length: 100" and no body
  /hop            response carrying hop-by-hop headers
  /never          read the request, never answer
  anything else   echo (see _echo_body)

Exact raw responses: server.raw["/path"] = (bytes, close_after).
Whole-server modes: mode="never" (never answer anything), mode="close" (read
the request head, then close without a byte of response), mode="reset" (read
the request head, then reset the connection), mode="status:NNN" (answer every
request with NNN). The mode may change while the server runs (an upstream
that starts failing, then recovers); delay_ms delays every answer.
"""

import hashlib
import http
import json
import select
import socket
import struct
import threading
import time

_PATTERN_PERIOD = 251  # prime, so the pattern does not line up with 64 KiB writes
_PATTERN = bytes(i % _PATTERN_PERIOD for i in range(65536 + _PATTERN_PERIOD))
WRITE_SIZE = 65536


def pattern_chunks(n, size=WRITE_SIZE):
    """Yields the n-byte deterministic pattern in pieces of at most size."""
    off = 0
    while off < n:
        k = min(size, n - off, 65536)
        start = off % _PATTERN_PERIOD
        yield _PATTERN[start:start + k]
        off += k


def pattern_bytes(n):
    return b"".join(pattern_chunks(n))


def pattern_sha256(n):
    h = hashlib.sha256()
    for piece in pattern_chunks(n):
        h.update(piece)
    return h.hexdigest()


def chunked_chunks(n):
    return [(f"chunk {i};".encode() * (i + 1)) for i in range(n)]


def chunked_payload(n):
    return b"".join(chunked_chunks(n))


class BadMessage(Exception):
    pass


class Reader:
    """Buffered reader over a socket; keeps bytes past the current message."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("peer closed")
        self.buf += data

    def read_until(self, delim, limit=1 << 20):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                out = bytes(self.buf[:i + len(delim)])
                del self.buf[:i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise BadMessage("line too long")
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_some(self, maxn):
        if not self.buf:
            self._fill()
        out = bytes(self.buf[:maxn])
        del self.buf[:maxn]
        return out


def parse_head(head):
    """head: bytes up to and including CRLFCRLF -> (method, target, version, headers)."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise BadMessage("bad request line %r" % lines[0])
    headers = []
    for line in lines[1:]:
        if b":" not in line:
            raise BadMessage("bad header line %r" % line)
        name, value = line.split(b":", 1)
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return parts[0].decode("latin-1"), parts[1].decode("latin-1"), parts[2].decode("latin-1"), headers


def header_values(headers, name):
    name = name.lower()
    return [v for n, v in headers if n.lower() == name]


class UpstreamServer:
    def __init__(self, name="up", mode="normal", host="127.0.0.1", port=0):
        self.name = name
        self.mode = mode
        self.delay_ms = 0
        self.raw = {}
        self.lock = threading.Lock()
        self.connections = 0  # accepted TCP connections
        self.heads = 0  # request heads received
        self.records = []  # completed requests (head + whole body)
        self.errors = []  # protocol errors seen (framing from the gateway)
        self._stop = threading.Event()
        self._socks = set()
        self._threads = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.address = "%s:%d" % (host, self.port)
        t = threading.Thread(target=self._accept_loop, name="upstream-accept-%s" % name, daemon=True)
        t.start()
        self._threads.append(t)

    # ---- public helpers -------------------------------------------------
    @property
    def requests(self):
        with self.lock:
            return len(self.records)

    @property
    def open_connections(self):
        """Connections accepted and not yet closed by either side."""
        with self.lock:
            return len(self._socks)

    def targets(self):
        with self.lock:
            return [r["target"] for r in self.records]

    def wait_heads(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.heads >= n:
                    return True
            time.sleep(0.01)
        return False

    def wait_requests(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.requests >= n:
                return True
            time.sleep(0.01)
        return False

    def close_connections(self):
        """Closes every open connection (as an upstream whose idle timeout
        ran out); the server goes on accepting."""
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self._stop.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        self.close_connections()
        for t in self._threads:
            t.join(timeout=2)

    # ---- internals ------------------------------------------------------
    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self.lsock], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                conn_id = self.connections
                self._socks.add(s)
            t = threading.Thread(target=self._serve, args=(s, conn_id), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, s, conn_id):
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = Reader(s)
            req_no = 0
            while not self._stop.is_set():
                try:
                    head = reader.read_until(b"\r\n\r\n")
                except EOFError:
                    return
                req_no += 1
                method, target, version, headers = parse_head(head)
                with self.lock:
                    self.heads += 1
                mode = self.mode
                if mode == "close":
                    return
                if mode == "reset":
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if mode == "never":
                    self._wait_forever(s)
                    return
                rec = self._read_body(reader, method, target, version, headers)
                rec.update(conn_id=conn_id, req_no=req_no, server=self.name, raw_head=head)
                with self.lock:
                    self.records.append(rec)
                if self.delay_ms:
                    time.sleep(self.delay_ms / 1000.0)
                if mode.startswith("status:"):
                    keep = self._simple(s, rec, int(mode[7:]), self._echo_body(rec))
                else:
                    keep = self._respond(s, rec)
                conn_hdr = ",".join(header_values(headers, "connection")).lower()
                if not keep or "close" in conn_hdr:
                    return
        except (OSError, EOFError) as e:
            if not self._stop.is_set():
                with self.lock:
                    self.errors.append(repr(e))
        except BadMessage as e:
            with self.lock:
                self.errors.append(str(e))
            # Answer so that the test sees why (the gateway sent something malformed).
            msg = ("test upstream: malformed request from the gateway: %s" % e).encode("latin-1", "replace")
            try:
                s.sendall(b"HTTP/1.1 400 Bad Request From Gateway\r\nContent-Type: text/plain\r\n"
                          b"X-Upstream-Error: 1\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                          % (len(msg), msg))
            except OSError:
                pass
        finally:
            with self.lock:
                self._socks.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def _wait_forever(self, s):
        while not self._stop.is_set():
            r, _, _ = select.select([s], [], [], 0.1)
            if r:
                try:
                    if not s.recv(65536):
                        return
                except OSError:
                    return

    def _read_body(self, reader, method, target, version, headers):
        h = hashlib.sha256()
        n = 0
        chunk_sizes = []
        trailers = []
        te = header_values(headers, "transfer-encoding")
        cl = header_values(headers, "content-length")
        chunked = bool(te) and te[-1].split(",")[-1].strip().lower() == "chunked"
        if te and not chunked:
            raise BadMessage("request with Transfer-Encoding %r" % te)
        if chunked:
            while True:
                line = reader.read_until(b"\r\n")
                size = int(line[:-2].split(b";")[0].strip(), 16)
                if size == 0:
                    break
                chunk_sizes.append(size)
                left = size
                while left:
                    piece = reader.read_some(min(left, 262144))
                    h.update(piece)
                    left -= len(piece)
                    n += len(piece)
                if reader.read_exact(2) != b"\r\n":
                    raise BadMessage("bad chunk end")
            while True:
                line = reader.read_until(b"\r\n")
                if line == b"\r\n":
                    break
                trailers.append(line[:-2].decode("latin-1"))
        elif cl:
            left = int(cl[0])
            while left:
                piece = reader.read_some(min(left, 262144))
                h.update(piece)
                left -= len(piece)
                n += len(piece)
        return {
            "method": method,
            "target": target,
            "version": version,
            "headers": headers,
            "body_len": n,
            "body_sha256": h.hexdigest(),
            "chunked": chunked,
            "chunk_sizes": chunk_sizes,
            "trailers": trailers,
        }

    def _echo_body(self, rec):
        keys = ("method", "target", "version", "headers", "body_len", "body_sha256", "conn_id", "req_no",
                "server", "chunked")
        return json.dumps({k: rec[k] for k in keys}).encode()

    @staticmethod
    def _reason(status):
        try:
            return http.HTTPStatus(status).phrase
        except ValueError:
            return "Whatever"

    def _simple(self, s, rec, status=200, body=b"", ctype="application/json", extra=()):
        head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nX-Upstream-Name: %s\r\n" % (
            status, self._reason(status), ctype, len(body), self.name)
        for k, v in extra:
            head += "%s: %s\r\n" % (k, v)
        data = head.encode("latin-1") + b"\r\n"
        if rec["method"] != "HEAD":
            data += body
        s.sendall(data)
        return True

    def _respond(self, s, rec):
        """Sends the response; returns False when the connection must be closed."""
        path = rec["target"].split("?", 1)[0]
        if path in self.raw:
            data, close = self.raw[path]
            s.sendall(data)
            return not close
        segs = path.split("/")
        for i, seg in enumerate(segs):
            arg = segs[i + 1] if i + 1 < len(segs) else ""
            handler = getattr(self, "_h_" + seg.replace("-", "_"), None) if seg else None
            if handler is not None:
                return handler(s, rec, arg)
        return self._simple(s, rec, 200, self._echo_body(rec))

    # ---- path keyword handlers -------------------------------------------
    def _h_status(self, s, rec, arg):
        return self._simple(s, rec, int(arg), self._echo_body(rec))

    def _h_delay(self, s, rec, arg):
        time.sleep(int(arg) / 1000.0)
        return self._simple(s, rec, 200, self._echo_body(rec))

    def _h_chunked(self, s, rec, arg):
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for c in chunked_chunks(int(arg)):
            s.sendall(b"%x\r\n%s\r\n" % (len(c), c))
        s.sendall(b"0\r\n\r\n")
        return True

    def _h_bytes(self, s, rec, arg):
        n = int(arg)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\n\r\n" % n)
        if rec["method"] == "HEAD":
            return True
        for piece in pattern_chunks(n):
            s.sendall(piece)
        return True

    def _h_close_mid(self, s, rec, arg):
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: 1000\r\n\r\n" + b"0123456789")
        time.sleep(0.05)
        return False

    def _h_no_length(self, s, rec, arg):
        n = int(arg) if arg else 100000
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
        for piece in pattern_chunks(n, 10000):
            s.sendall(piece)
        return False

    def _h_head_test(self, s, rec, arg):
        return self._simple(s, rec, 200, b"hello world", ctype="text/plain")

    def _h_204(self, s, rec, arg):
        s.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-Test: 204\r\n\r\n")
        return True

    def _h_204junk(self, s, rec, arg):
        s.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-Test: 204\r\n\r\nhello")
        time.sleep(0.05)
        return False

    def _h_304(self, s, rec, arg):
        s.sendall(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: \"abc\"\r\nX-Test: 304\r\n\r\n")
        return True

    def _h_hop(self, s, rec, arg):
        s.sendall(b"HTTP/1.1 200 OK\r\n"
                  b"Content-Type: text/plain\r\n"
                  b"Connection: X-Foo\r\n"
                  b"X-Foo: 1\r\n"
                  b"Keep-Alive: timeout=5, max=100\r\n"
                  b"Upgrade: h2c\r\n"
                  b"Trailer: X-Checksum\r\n"
                  b"Proxy-Connection: keep-alive\r\n"
                  b"X-Keep: yes\r\n"
                  b"Content-Length: 3\r\n\r\nhop")
        return True

    def _h_never(self, s, rec, arg):
        self._wait_forever(s)
        return False
