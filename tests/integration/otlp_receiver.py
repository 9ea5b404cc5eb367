"""A small OTLP/HTTP receiver for the tracing tests: records every POST to
/v1/traces (JSON encoding), answers a scripted status, can stall.

It checks nothing by itself: tests read `spans()` (every span with its
resource attached) and assert on them against the OTLP protobuf JSON mapping."""

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OtlpReceiver:
    def __init__(self, tls=None):
        """tls: (certfile, keyfile) to answer over HTTPS."""
        self.lock = threading.Lock()
        self.posts = []  # (path, headers dict lower-case, decoded body)
        self.statuses = []  # scripted answers, consumed in order; then 200
        self.delay = 0.0  # seconds before answering
        self.attempts = 0
        recv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with recv.lock:
                    recv.attempts += 1
                    status = recv.statuses.pop(0) if recv.statuses else 200
                    delay = recv.delay
                if delay:
                    time.sleep(delay)
                if status == 200:
                    with recv.lock:
                        recv.posts.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                                           json.loads(body)))
                out = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = "%s://127.0.0.1:%d/v1/traces" % ("https" if tls else "http", self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def spans(self):
        """Every span received: dicts with the span's fields, plus 'resource'
        (attributes as a dict) and 'scope'."""
        out = []
        with self.lock:
            posts = list(self.posts)
        for _path, _hdrs, doc in posts:
            for rs in doc["resourceSpans"]:
                res = attrs(rs["resource"]["attributes"])
                for ss in rs["scopeSpans"]:
                    for sp in ss["spans"]:
                        d = dict(sp)
                        d["resource"] = res
                        d["scope"] = ss["scope"]
                        out.append(d)
        return out

    def wait_spans(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.spans()
            if len(s) >= n:
                return s
            time.sleep(0.05)
        return self.spans()


def value(v):
    """An OTLP AnyValue as Python: intValue is a string in the JSON mapping."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        assert isinstance(v["intValue"], str), v
        return int(v["intValue"])
    if "boolValue" in v:
        return v["boolValue"]
    if "doubleValue" in v:
        return v["doubleValue"]
    raise AssertionError("unexpected value %r" % v)


def attrs(lst):
    return {a["key"]: value(a["value"]) for a in lst}
