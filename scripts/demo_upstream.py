#!/usr/bin/env python3
"""A small JSON HTTP/1.1 upstream for trying tollgate by hand (scripts/demo).

Standard library only. Keep-alive HTTP/1.1 with a thread per connection. Every
JSON answer carries an "echo" of what arrived (method, path, query, headers,
body) so you can see exactly what the gateway forwarded.

Paths work with and without the /api prefix (for routes with strip_prefix):
  GET    /health               {"status": "ok"}
  GET    /api/users            a list of users
  GET    /api/users/<id>       {"id": <id>, "name": ..., "email": ...}
  POST   /api/users            201, the JSON body sent back with a new id
  PUT|PATCH|DELETE /api/users/<id>
  ANY    /api/status/<code>    answers with that status (e.g. 503)
  ANY    /api/delay/<ms>       answers after <ms> milliseconds (timeouts)
  ANY    anything else         200 with the echo only

Usage: demo_upstream.py [--host 127.0.0.1] [--port 9001] [--quiet]
"""

import argparse
import json
import re
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

USERS = {
    1: "Ada Lovelace",
    2: "Alan Turing",
    3: "Grace Hopper",
    42: "Douglas Adams",
}
MAX_BODY = 1 << 20


def user_json(uid):
    name = USERS.get(uid, "User %d" % uid)
    return {"id": uid, "name": name, "email": "user%d@example.com" % uid}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says close
    server_version = "tollgate-demo-upstream/1.0"
    quiet = False

    # --- request plumbing -------------------------------------------------

    def read_body(self):
        """Reads a Content-Length or chunked body; returns bytes or None on error."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            return self.read_chunked()
        n = self.headers.get("Content-Length")
        if n is None:
            return b""
        try:
            n = int(n)
        except ValueError:
            return None
        if n < 0 or n > MAX_BODY:
            return None
        return self.rfile.read(n)

    def read_chunked(self):
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            if not line:
                return None
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                return None
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            if len(body) + size > MAX_BODY:
                return None
            body += self.rfile.read(size)
            self.rfile.readline(8)  # CRLF after the chunk data

    def echo(self, body):
        url = urlsplit(self.path)
        query = {k: (v[0] if len(v) == 1 else v)
                 for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        text = body.decode("utf-8", "replace") if body else ""
        return {
            "method": self.command,
            "path": url.path,
            "query": query,
            "raw_query": url.query,
            "headers": {k: v for k, v in self.headers.items()},
            "body": text,
        }

    def send_json(self, status, obj, extra_headers=()):
        data = (json.dumps(obj, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Upstream", "demo-%d" % self.server.server_address[1])
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write("upstream: %s %s\n" % (self.address_string(), fmt % args))

    # --- routing ----------------------------------------------------------

    def handle_any(self):
        body = self.read_body()
        if body is None:
            self.close_connection = True
            self.send_json(400, {"error": "bad request body"})
            return
        path = urlsplit(self.path).path
        echo = self.echo(body)
        status, obj, extra = self.route(self.command, path, body)
        obj["echo"] = echo
        self.send_json(status, obj, extra)

    def route(self, method, path, body):
        # The same answers with or without the /api prefix, so that a route
        # with strip_prefix: /api works too.
        if path == "/api" or path.startswith("/api/"):
            path = path[4:] or "/"
        if path == "/health":
            return 200, {"status": "ok"}, ()
        m = re.fullmatch(r"/status/(\d{3})", path)
        if m and 200 <= int(m.group(1)) <= 599:
            return int(m.group(1)), {"status": int(m.group(1))}, ()
        m = re.fullmatch(r"/delay/(\d{1,6})", path)
        if m:
            time.sleep(int(m.group(1)) / 1000.0)
            return 200, {"delayed_ms": int(m.group(1))}, ()
        if path in ("/users", "/users/"):
            return self.users_collection(method, body)
        m = re.fullmatch(r"/users/(\d{1,9})", path)
        if m:
            return self.user_item(method, int(m.group(1)), body)
        return 200, {}, ()

    def users_collection(self, method, body):
        if method == "POST":
            try:
                obj = json.loads(body or b"{}")
            except ValueError:
                return 400, {"error": "body is not JSON"}, ()
            if not isinstance(obj, dict):
                return 400, {"error": "body must be a JSON object"}, ()
            obj["id"] = 1000 + len(USERS)
            return 201, obj, (("Location", "/api/users/%d" % obj["id"]),)
        return 200, {"users": [user_json(u) for u in sorted(USERS)]}, ()

    def user_item(self, method, uid, body):
        if method == "DELETE":
            return 200, {"id": uid, "deleted": True}, ()
        if method in ("PUT", "PATCH"):
            try:
                obj = json.loads(body or b"{}")
            except ValueError:
                return 400, {"error": "body is not JSON"}, ()
            if not isinstance(obj, dict):
                return 400, {"error": "body must be a JSON object"}, ()
            return 200, dict(user_json(uid), **obj, id=uid), ()
        return 200, user_json(uid), ()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9001)
    ap.add_argument("--quiet", action="store_true", help="no access log")
    args = ap.parse_args()

    Handler.quiet = args.quiet
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer((args.host, args.port), Handler)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    sys.stderr.write("upstream: listening on http://%s:%d\n" % (args.host, args.port))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
