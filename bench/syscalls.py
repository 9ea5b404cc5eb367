#!/usr/bin/env python3
"""Syscalls per keep-alive request: tollgate (1 worker) under strace -f -c in
front of an nginx origin (127.0.0.1:19180), N GETs over one client connection
(plain or TLS 1.3, ECDSA P-256), minus a run with 100 requests; prints the
per-request count by syscall. Needs nginx, strace, openssl (h2: h2load).

  bench/syscalls.py build/tollgate plain 2000
  bench/syscalls.py build/tollgate tls 2000
  bench/syscalls.py nginx plain 2000       # nginx as the proxy, for comparison
  bench/syscalls.py nginx tls 2000           (1 worker, no master, same origin)
  bench/syscalls.py build/tollgate h2 2000    # HTTP/2 over TLS (ALPN h2): h2load,
  bench/syscalls.py nginx h2 2000             # C connections (H2_CONNS, 1) with one stream each
"""
import os, socket, ssl, subprocess, sys, time, re, tempfile

BIN, MODE, N = sys.argv[1], sys.argv[2], int(sys.argv[3])
D = tempfile.mkdtemp(prefix="iom")
ORIGIN = int(os.environ.get("SYSCALLS_PORT", "19180"))  # and the next one
PORT = ORIGIN + 1

def sh(*a):
    subprocess.run(a, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def origin():
    os.makedirs(D + "/o", exist_ok=True)
    open(D + "/o/nginx.conf", "w").write("""worker_processes 1; daemon off; master_process off; pid %s/o/pid;
error_log %s/o/err warn; events { worker_connections 1024; }
http { access_log off; client_body_temp_path %s/o; proxy_temp_path %s/o; fastcgi_temp_path %s/o; uwsgi_temp_path %s/o; scgi_temp_path %s/o;
keepalive_requests 1000000; server { listen 127.0.0.1:%d; location / { return 200 "hello world\\n"; } } }
""" % ((D,) * 7 + (ORIGIN,)))
    return subprocess.Popen(["nginx", "-p", D + "/o/", "-c", D + "/o/nginx.conf", "-e", D + "/o/err"])

def conf():
    tls = ""
    if MODE in ("tls", "h2"):
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-days", "3", "-subj", "/CN=bench.test", "-keyout", D + "/k.pem", "-out", D + "/c.pem")
        tls = "\n    tls:\n      certificates:\n        - cert: %s/c.pem\n          key: %s/k.pem" % (D, D)
    open(D + "/t.yaml", "w").write("""workers: 1
listen:
  - address: "127.0.0.1:%d"%s
limits:
  idle_timeout: 300s
upstreams:
  origin:
    targets: ["127.0.0.1:%d"]
    keepalive: 64
routes:
  - name: all
    match:
      path_prefix: /
    upstream: origin
""" % (PORT, tls, ORIGIN))

REQ = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"

H2_CONNS = int(os.environ.get("H2_CONNS", "1"))

def client(n):
    if MODE == "h2" and n > 0:  # -m 1: one stream in flight per connection
        r = subprocess.run(["h2load", "-n", str(n), "-c", str(H2_CONNS), "-m", "1",
                            "https://127.0.0.1:%d/" % PORT], stdout=subprocess.PIPE, text=True)
        assert "%d succeeded" % n in r.stdout, r.stdout
    if MODE == "h2":
        return
    s = socket.create_connection(("127.0.0.1", PORT))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if MODE == "tls":
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        s = ctx.wrap_socket(s)
    for _ in range(n):
        s.sendall(REQ)
        buf = b""
        while not (b"\r\n\r\n" in buf and buf.endswith(b"hello world\n")):
            d = s.recv(65536)
            assert d, "closed"
            buf += d
    s.close()

def nginx_proxy_conf():
    """nginx as the proxy under test: what bench/run configures, one worker."""
    os.makedirs(D + "/p", exist_ok=True)
    ssl_ = {"tls": " ssl", "h2": " ssl http2"}.get(MODE, "")
    certs = ("ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate %s/c.pem; ssl_certificate_key %s/k.pem;"
             % (D, D) if MODE in ("tls", "h2") else "")
    open(D + "/p/nginx.conf", "w").write("""worker_processes 1; daemon off; master_process off; pid %s/p/pid;
error_log %s/p/err warn; events { worker_connections 1024; }
http { access_log off; client_body_temp_path %s/p; proxy_temp_path %s/p; fastcgi_temp_path %s/p; uwsgi_temp_path %s/p; scgi_temp_path %s/p;
keepalive_requests 1000000; upstream o { server 127.0.0.1:%d; keepalive 64; }
server { listen 127.0.0.1:%d%s; %s location / { proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
""" % ((D,) * 7 + (ORIGIN, PORT, ssl_, certs)))
    return ["nginx", "-p", D + "/p/", "-c", D + "/p/nginx.conf", "-e", D + "/p/err"]

def run(n):
    out = D + "/st%d" % n
    cmd = nginx_proxy_conf() if os.path.basename(BIN) == "nginx" else [BIN, "-c", D + "/t.yaml"]
    p = subprocess.Popen(["strace", "-f", "-c", "-o", out] + cmd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", PORT)).close(); break
        except OSError:
            time.sleep(0.1)
    time.sleep(0.3)
    try:
        client(n)
        time.sleep(0.3)
    finally:
        stop(p)
    calls = {}
    for line in open(out):
        f = line.split()
        if len(f) >= 5 and f[-1] not in ("syscall", "total") and f[3].isdigit():
            calls[f[-1]] = int(f[3])
    return calls

def stop(p):
    kids = subprocess.run(["pgrep", "-P", str(p.pid)], stdout=subprocess.PIPE).stdout.split()
    if not kids:  # nginx without a master: strace's child is the server itself
        kids = subprocess.run(["pgrep", "-x", "nginx", "-P", str(p.pid)], stdout=subprocess.PIPE).stdout.split()
        kids = kids or [str(p.pid)]
    for k in kids:
        os.kill(int(k), 15)
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        for k in kids:
            os.kill(int(k), 9)
        p.wait()

o = origin(); time.sleep(0.5)
conf()
try:
    run(0)  # warm caches
    a = run(100); b = run(100 + N)
finally:
    o.terminate(); o.wait()
keys = sorted(set(a) | set(b), key=lambda k: -(b.get(k, 0) - a.get(k, 0)))
tot = 0
for k in keys:
    d = b.get(k, 0) - a.get(k, 0)
    if d / N >= 0.01:
        print("%-16s %6.2f" % (k, d / N)); tot += d
print("%-16s %6.2f" % ("total", tot / N))
