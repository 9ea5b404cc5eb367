"""The Debian package, end to end (scripts/test stage `package`; root only).

Builds tollgate_<version>_<arch>.deb and tollgate-dev with dpkg-buildpackage
from a copy of the tree, checks lintian reports no error, installs both with
dpkg -i, runs the installed binary against the installed config (as the
tollgate user, with a socket standing in for systemd), checks the files, then
purges and checks the machine is as it was (the tollgate user included,
which Debian's purge keeps by policy).
"""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import urllib.request

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a package: root only"),
    pytest.mark.skipif(shutil.which("dpkg-buildpackage") is None, reason="dpkg-dev is not installed"),
]


def run(cmd, **kw):
    kw.setdefault("timeout", 900)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    assert p.returncode == 0, "%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout.decode()[-6000:])
    return p.stdout.decode()


def version():
    with open(os.path.join(REPO, "debian", "changelog")) as f:
        return re.match(r"tollgate \(([^)]+)\)", f.readline()).group(1)


ARCH = subprocess.run(["dpkg", "--print-architecture"], stdout=subprocess.PIPE).stdout.decode().strip() \
    if shutil.which("dpkg") else ""
TRIPLET = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout.decode().strip() if shutil.which("dpkg-architecture") else ""

# Everything the package may create; compared before install and after purge.
WATCHED = [
    "/usr/sbin/tollgate", "/etc/tollgate", "/var/log/tollgate", "/etc/logrotate.d/tollgate",
    "/lib/systemd/system/tollgate.service", "/etc/systemd/system/multi-user.target.wants/tollgate.service",
    "/var/lib/systemd/deb-systemd-helper-enabled/tollgate.service.dsh-also",
    "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/tollgate.service",
    "/usr/share/man/man8/tollgate.8.gz", "/usr/share/man/man5/tollgate.yaml.5.gz",
    "/usr/include/tollgate", "/usr/lib/%s/tollgate" % TRIPLET, "/usr/lib/%s/pkgconfig/tollgate-plugin.pc" % TRIPLET,
    "/usr/share/doc/tollgate", "/usr/share/doc/tollgate-dev",
]


def state():
    def exists(name, db):
        try:
            db(name)
            return True
        except KeyError:
            return False
    return {
        "paths": {p: os.path.lexists(p) for p in WATCHED},
        "user": exists("tollgate", pwd.getpwnam),
        "group": exists("tollgate", grp.getgrnam),
        "dpkg": subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", "tollgate", "tollgate-dev"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode(),
    }


def installed(pkg):
    out = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout.decode()
    return out == "installed"


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    if installed("tollgate") or installed("tollgate-dev"):
        pytest.skip("a tollgate package is already installed here: not touching it")
    root = tmp_path_factory.mktemp("deb")
    src = root / ("tollgate-" + version())
    files = subprocess.run(["git", "-C", REPO, "ls-files", "-co", "--exclude-standard", "-z"],
                           stdout=subprocess.PIPE, check=True).stdout.decode().split("\0")
    for f in files:
        if not f or f.startswith("build") or not os.path.lexists(os.path.join(REPO, f)):
            continue
        os.makedirs(os.path.dirname(src / f), exist_ok=True)
        shutil.copy2(os.path.join(REPO, f), src / f, follow_symlinks=False)
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=str(src))
    main = root / ("tollgate_%s_%s.deb" % (version(), ARCH))
    dev = root / ("tollgate-dev_%s_%s.deb" % (version(), ARCH))
    assert main.exists() and dev.exists(), sorted(os.listdir(root))
    return root, main, dev


def test_lintian_reports_no_error(debs):
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed")
    root, _, _ = debs
    changes = root / ("tollgate_%s_%s.changes" % (version(), ARCH))
    p = subprocess.run(["lintian", "--allow-root", str(changes)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=600)
    errors = [line for line in p.stdout.decode().splitlines() if line.startswith("E:")]
    assert not errors, p.stdout.decode()


def wait_ready(sock, timeout=10):
    sock.settimeout(timeout)
    while b"READY=1" not in sock.recv(4096):
        pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check_installed(tmp_path):
    # Files where the issue says.
    for p in ["/usr/sbin/tollgate", "/etc/tollgate/tollgate.yaml", "/etc/logrotate.d/tollgate",
              "/lib/systemd/system/tollgate.service", "/usr/share/man/man8/tollgate.8.gz",
              "/usr/share/man/man5/tollgate.yaml.5.gz", "/usr/include/tollgate/plugin.h",
              "/usr/lib/%s/pkgconfig/tollgate-plugin.pc" % TRIPLET]:
        assert os.path.exists(p), p
    assert os.path.isdir("/etc/tollgate/conf.d")
    plugins = "/usr/lib/%s/tollgate/plugins" % TRIPLET
    assert {"jwt.so", "rate-limit.so", "request-log.so"} <= set(os.listdir(plugins))
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "tollgate"])
    assert "/etc/tollgate/tollgate.yaml" in conffiles
    unit = open("/lib/systemd/system/tollgate.service").read()
    assert "Type=notify" in unit and "-s reload" in unit and "ExecStart=/usr/sbin/tollgate" in unit
    # The system user and its log directory.
    user = pwd.getpwnam("tollgate")
    st = os.stat("/var/log/tollgate")
    assert st.st_uid == user.pw_uid
    # Man pages are found by man.
    if shutil.which("man"):
        assert run(["man", "-w", "tollgate.yaml"]).strip().endswith("tollgate.yaml.5.gz")
    # -V names the installed plugin directory and every plugin.
    info = run(["/usr/sbin/tollgate", "-V"])
    assert "plugins in %s" % plugins in info and "  jwt " in info, info
    # The installed config passes -t (as root, and as the service user).
    run(["/usr/sbin/tollgate", "-t", "-c", "/etc/tollgate/tollgate.yaml"])
    # tollgate-dev builds a plugin that the installed tollgate loads.
    cflags = run(["pkg-config", "--cflags", "tollgate-plugin"]).split()
    assert run(["pkg-config", "--variable=plugindir", "tollgate-plugin"]).strip() == plugins
    so = tmp_path / "sample.so"
    run(["cc", "-shared", "-fPIC", "-o", str(so), os.path.join(REPO, "tests", "plugins", "sample.c")] + cflags)
    assert so.exists()


def serve_installed(tmp_path):
    """The installed binary, installed config, as the tollgate user."""
    port = free_port()
    # Abstract: the service user cannot reach a path under root's private /tmp dir.
    notify = "@tollgate-package-test-%d" % os.getpid()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + notify[1:])
    env = dict(os.environ, TOLLGATE_LISTEN="127.0.0.1:%d" % port, NOTIFY_SOCKET=notify)
    cmd = ["/usr/sbin/tollgate", "-c", "/etc/tollgate/tollgate.yaml"]
    if shutil.which("setpriv"):
        cmd = ["setpriv", "--reuid=tollgate", "--regid=tollgate", "--clear-groups"] + cmd
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        try:
            wait_ready(sock)
        except socket.timeout:
            proc.kill()
            raise AssertionError("no READY=1; stderr:\n" + proc.communicate()[1].decode())
        body = urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5).read()
        assert body == b"tollgate is running\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    log = open("/var/log/tollgate/access.log").read()
    assert '"path":"/"' in log.replace(" ", ""), log


def test_install_run_purge(debs, tmp_path):
    _, main, dev = debs
    before = state()
    try:
        run(["dpkg", "-i", str(main), str(dev)])
        check_installed(tmp_path)
        serve_installed(tmp_path)
    finally:
        subprocess.run(["dpkg", "--purge", "tollgate-dev", "tollgate"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=300)
        # Debian's purge keeps a system user; this test leaves the machine as it found it.
        if not before["user"] and state()["user"]:
            subprocess.run(["userdel", "tollgate"], timeout=60)
        if not before["group"] and state()["group"]:
            subprocess.run(["groupdel", "tollgate"], timeout=60)
    after = state()
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}
