"""Harness for the tollgate black-box tests: ports, config files, the gateway
process, and a raw-socket HTTP/1.1 client that shows exactly what came back."""

import json
import os
import re
import select
import signal
import socket
import subprocess
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("TOLLGATE_BIN", os.path.join(REPO, "build", "tollgate"))
SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


# ---------------------------------------------------------------- ports ----
_GIVEN_PORTS = set()


def free_port():
    """A port nothing listens on now, never the same twice in one test run:
    the kernel may hand a just-closed ephemeral port out again, and a test
    that asks for two (a listener and an admin address) must get two."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port
    raise AssertionError("no fresh free port in 100 tries")


# --------------------------------------------------------------- config ----
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./:\-]*\Z")
_NOT_PLAIN = re.compile(r"(?i)(true|false|yes|no|on|off|null|~|[0-9._:]+)\Z")


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and not _NOT_PLAIN.match(s):
        return s
    if re.fullmatch(r"127\.0\.0\.1:[0-9]+", s):
        return s
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)):
                if not v:
                    out.append("%s%s: %s" % (pad, k, "{}" if isinstance(v, dict) else "[]"))
                else:
                    out.append("%s%s:" % (pad, k))
                    out.extend(to_yaml(v, indent + 2))
            else:
                out.append("%s%s: %s" % (pad, k, _scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                sub = to_yaml(item, indent + 2)
                sub[0] = pad + "- " + sub[0][indent + 2:]
                out.extend(sub)
            elif isinstance(item, list):
                raise ValueError("nested lists are not needed")
            else:
                out.append("%s- %s" % (pad, _scalar(item)))
    return out


def yaml_text(obj):
    return "\n".join(to_yaml(obj)) + "\n"


DEFAULT_LIMITS = {
    "header_timeout": "5s",
    "idle_timeout": "10s",
    "body_timeout": "10s",
    "max_header_size": "16KiB",
    "max_body_size": "10MiB",
}

DEFAULT_UPSTREAM = {
    "balance": "round_robin",
    "keepalive": 16,
    "connect_timeout": "1s",
    "timeout": "5s",
    "retries": 1,
    "max_fails": 3,
    "fail_timeout": "10s",
}


def upstream_conf(targets, **kw):
    conf = {"targets": list(targets)}
    conf.update(DEFAULT_UPSTREAM)
    conf.update(kw)
    return conf


def route(name, upstream, match=None, strip_prefix=None):
    r = {"name": name}
    if match is not None:
        r["match"] = match
    if strip_prefix is not None:
        r["strip_prefix"] = strip_prefix
    r["upstream"] = upstream
    return r


def gateway_config(port, upstreams, routes, limits=None, workers=2, trusted_proxies=("10.0.0.0/8",)):
    lim = dict(DEFAULT_LIMITS)
    lim.update(limits or {})
    return {
        "workers": workers,
        "listen": [{"address": "127.0.0.1:%d" % port}],
        "limits": lim,
        "trusted_proxies": list(trusted_proxies),
        "upstreams": upstreams,
        "routes": routes,
    }


def self_signed_cert(directory, name="localhost"):
    """A self-signed ECDSA P-256 certificate for name (its CN and DNS SAN), made
    with the openssl CLI in directory: {"cert": path, "key": path}, as a
    listener's `tls: certificates:` entry takes it."""
    cert = os.path.join(str(directory), name + ".crt")
    key = os.path.join(str(directory), name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name,
                    "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return {"cert": cert, "key": key}


# -------------------------------------------------------------- process ----
def run_check(path, env=None, timeout=20):
    """Runs `tollgate -t -c path`; returns (rc, stderr)."""
    p = subprocess.run([BINARY, "-t", "-c", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=timeout)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def wait_port(port, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
            s.close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class Gateway:
    def __init__(self, config, workdir, port, env=None, name="gw"):
        self.port = port
        self.workdir = str(workdir)
        self.cfg_path = os.path.join(self.workdir, name + ".yaml")
        self.err_path = os.path.join(self.workdir, name + ".stderr")
        self.out_path = os.path.join(self.workdir, name + ".stdout")
        text = config if isinstance(config, str) else yaml_text(config)
        with open(self.cfg_path, "w") as f:
            f.write(text)
        self.env = env
        self.proc = None
        self.rc = None

    def start(self, timeout=10):
        self._err = open(self.err_path, "wb")
        self._out = open(self.out_path, "wb")
        self.proc = subprocess.Popen([BINARY, "-c", self.cfg_path], stdout=self._out, stderr=self._err,
                                     env=self.env, cwd=self.workdir)
        if not wait_port(self.port, timeout, self.proc):
            self.proc.poll()
            rc = self.proc.returncode
            if rc is None:
                self.proc.kill()
                self.proc.wait()
            raise AssertionError("gateway did not accept on port %d within %ss (rc=%r)\nconfig:\n%s\nstderr:\n%s"
                                 % (self.port, timeout, rc, open(self.cfg_path).read(), self.stderr()))
        return self

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM, wait; returns the exit code (None if it had to be killed)."""
        if self.rc is not None or self.proc is None:
            return self.rc
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.rc = None
        self._err.close()
        self._out.close()
        return self.rc

    def check_clean_exit(self):
        rc = self.stop()
        err = self.stderr()
        assert rc == 0, "gateway exit code %r after SIGTERM (None = did not exit within 10 s)\nstderr:\n%s" % (
            rc, err[-4000:])
        for marker in SANITIZER_MARKERS:
            assert marker not in err, "sanitizer report in gateway stderr:\n%s" % err[-8000:]

    def pids(self):
        """The gateway process and its descendants (workers may be processes)."""
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            try:
                for task in os.listdir("/proc/%d/task" % pid):
                    with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                        todo.extend(int(x) for x in f.read().split())
            except OSError:
                pass
        return out

    def rss_kb(self):
        total = 0
        for pid in self.pids():
            try:
                with open("/proc/%d/status" % pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total


# --------------------------------------------------------------- client ----
class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []  # [(name, value)] as received, latin-1 decoded
        self.body = b""
        self.raw_head = b""
        self.chunked = False
        self.chunk_sizes = []
        self.trailers = []
        self.complete = False  # the framing said the body ended (not cut by EOF)

    def header(self, name):
        vals = self.header_all(name)
        return vals[0] if vals else None

    def header_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %s %s headers=%r body[:200]=%r>" % (self.version, self.status, self.reason,
                                                                self.headers, self.body[:200])


class Conn:
    """One client TCP connection with a buffered, framing-aware reader."""

    def __init__(self, port, timeout=10.0, rcvbuf=None, source=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:  # another loopback address (127.0.0.2...) as the client's
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n=262144):
        data = self.sock.recv(n)
        if not data:
            self.eof = True
            raise EOFError("connection closed by the gateway")
        self.buf += data
        return len(data)

    def read_until(self, delim, limit=1 << 20):
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                out = bytes(self.buf[:i + len(delim)])
                del self.buf[:i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise AssertionError("no %r within %d bytes: %r" % (delim, limit, bytes(self.buf[:300])))
            start = max(0, len(self.buf) - len(delim))
            self._fill()

    def read_exact(self, n, sink=None):
        if sink is None:
            while len(self.buf) < n:
                self._fill()
            out = bytes(self.buf[:n])
            del self.buf[:n]
            return out
        left = n
        while left:
            if not self.buf:
                self._fill()
            k = min(left, len(self.buf))
            sink(bytes(self.buf[:k]))
            del self.buf[:k]
            left -= k
        return b""

    def read_available(self, wait=0.0):
        """Whatever arrives within wait seconds (b'' if nothing)."""
        if not self.buf:
            r, _, _ = select.select([self.sock], [], [], wait)
            if r:
                try:
                    self._fill()
                except EOFError:
                    pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def read_to_eof(self, timeout=5.0, sink=None):
        """Reads until the peer closes. Raises AssertionError if it does not within timeout."""
        deadline = time.monotonic() + timeout
        out = bytearray(self.buf)
        self.buf.clear()
        if sink and out:
            sink(bytes(out))
            out.clear()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("connection not closed within %.1fs (got %r)" % (timeout, bytes(out[:300])))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(262144)
            except socket.timeout:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                return bytes(out)
            if sink:
                sink(data)
            else:
                out += data

    def expect_closed(self, timeout=3.0):
        """Asserts that the peer closes the connection without sending more bytes."""
        extra = self.read_to_eof(timeout)
        assert extra == b"", "bytes after the response before close: %r" % extra[:300]

    def read_response(self, method="GET", sink=None, allow_eof_body=True):
        r = Response()
        head = self.read_until(b"\r\n\r\n", limit=1 << 20)
        r.raw_head = head
        lines = head[:-4].split(b"\r\n")
        m = re.match(rb"(HTTP/1\.[01]) ([0-9]{3})(?: (.*))?\Z", lines[0])
        assert m, "bad status line %r" % lines[0]
        r.version = m.group(1).decode()
        r.status = int(m.group(2))
        r.reason = (m.group(3) or b"").decode("latin-1")
        for line in lines[1:]:
            assert b":" in line, "bad response header line %r" % line
            n, v = line.split(b":", 1)
            r.headers.append((n.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
        body = bytearray()
        add = sink if sink else body.extend
        te = r.header_all("transfer-encoding")
        cl = r.header_all("content-length")
        if method == "HEAD" or r.status < 200 or r.status in (204, 304):
            r.complete = True
        elif te:
            assert te[-1].lower().split(",")[-1].strip() == "chunked", "bad response TE %r" % te
            r.chunked = True
            try:
                while True:
                    line = self.read_until(b"\r\n")
                    size = int(line[:-2].split(b";")[0], 16)
                    if size == 0:
                        break
                    r.chunk_sizes.append(size)
                    self.read_exact(size, add) if sink else add(self.read_exact(size))
                    assert self.read_exact(2) == b"\r\n", "bad chunk terminator"
                while True:
                    line = self.read_until(b"\r\n")
                    if line == b"\r\n":
                        break
                    r.trailers.append(line[:-2].decode("latin-1"))
                r.complete = True
            except EOFError:
                if not allow_eof_body:
                    raise
        elif cl:
            assert len(set(cl)) == 1, "several Content-Length values %r" % cl
            n = int(cl[0])
            try:
                self.read_exact(n, add) if sink else add(self.read_exact(n))
                r.complete = True
            except EOFError:
                add(bytes(self.buf))
                self.buf.clear()
                if not allow_eof_body:
                    raise
        else:
            data = self.read_to_eof(timeout=self.sock.gettimeout() or 10, sink=sink)
            if not sink:
                add(data)
            r.complete = True
        r.body = bytes(body)
        return r


def build_request(method, target, headers=(), body=b"", version="HTTP/1.1", host="test.local",
                  content_length=True):
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    names = set()
    for n, v in headers:
        lines.append("%s: %s" % (n, v))
        names.add(n.lower())
    if body and content_length and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def request(port, method="GET", target="/", headers=(), body=b"", version="HTTP/1.1", host="test.local",
            timeout=10.0, source=None):
    with Conn(port, timeout=timeout, source=source) as c:
        c.send(build_request(method, target, headers, body, version, host))
        return c.read_response(method)


def start_with_admin(gateway_factory, upstreams, routes, workers=2):
    """A gateway with an admin listener; its port is gw.admin_port."""
    port = free_port()
    cfg = gateway_config(port, upstreams, routes, workers=workers)
    admin = free_port()
    cfg["admin"] = {"address": "127.0.0.1:%d" % admin}
    gw = gateway_factory(cfg)
    gw.admin_port = admin
    return gw


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric(admin_port, name, **labels):
    """The value of the /metrics sample `name` whose labels are exactly
    `labels` (in any order); an AssertionError when there is none."""
    r = request(admin_port, "GET", "/metrics", host="127.0.0.1")
    assert r.status == 200, r
    for line in r.body.decode().splitlines():
        if not line.startswith(name) or line[len(name):len(name) + 1] not in (" ", "{"):
            continue
        head, _, rest = line.partition("} ") if "{" in line else line.partition(" ")
        got = dict(_LABEL.findall(head[len(name) + 1:])) if "{" in line else {}
        if got == labels:
            return float(rest.split()[0])
    raise AssertionError("%s%s not in /metrics" % (name, labels or ""))


def chunk_encode(chunks, extensions=None, trailers=()):
    out = bytearray()
    for i, c in enumerate(chunks):
        ext = (extensions or {}).get(i, "")
        out += b"%x%s\r\n%s\r\n" % (len(c), ext.encode(), c)
    out += b"0\r\n"
    for t in trailers:
        out += t.encode() + b"\r\n"
    out += b"\r\n"
    return bytes(out)


def names_in_order(headers, wanted):
    """The (name, value) pairs of headers whose name is in wanted (case-insensitive), in order."""
    w = {x.lower() for x in wanted}
    return [(n, v) for n, v in headers if n.lower() in w]
