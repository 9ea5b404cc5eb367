"""The plugin ABI rules of include/tollgate/plugin.h through the real binary:
modules built for this API, an older minor, a newer minor, another major, API
1 and a truncated descriptor (tests/plugins/abi.c, one module per variant);
and the installed pkg-config file, with which tests/plugins/sample.c builds
out of tree."""

import glob
import os
import shutil
import subprocess

import pytest

import tg_harness as h

BUILD = os.environ.get("TOLLGATE_BUILD_DIR", os.path.dirname(h.BINARY))


def _api_minor():
    """This core's TG_PLUGIN_API_MINOR, as plugin.h says (it grows with the API)."""
    with open(os.path.join(h.REPO, "include", "tollgate", "plugin.h")) as f:
        for line in f:
            if line.startswith("#define TG_PLUGIN_API_MINOR "):
                return int(line.split()[2])
    raise AssertionError("TG_PLUGIN_API_MINOR not found in plugin.h")


API = "2.%d" % _api_minor()
NEWER = "2.%d" % (_api_minor() + 1)


def module(variant):
    return os.path.join(os.path.dirname(h.BINARY), "tests", "abi_%s.so" % variant)


def config_text(path, port=1):
    return ('listen:\n  - address: "127.0.0.1:%d"\nupstreams:\n  up: { targets: ["127.0.0.1:2"] }\n'
            "plugins:\n  - { name: abi, path: %s }\nroutes:\n  - { name: a, upstream: up }\n"
            % (port, path))


def check(tmp_path, variant, *args):
    cfg = tmp_path / ("%s.yaml" % variant)
    cfg.write_text(config_text(module(variant)))
    p = subprocess.run([h.BINARY, "-t", "-c", str(cfg)] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    return p.returncode, p.stderr.decode("utf-8", "replace"), cfg


def run_through(gateway_factory, upstream_factory, plugin_path):
    """Starts a gateway with plugin_path on the route; returns the headers the upstream saw."""
    up = upstream_factory("up")
    port = h.free_port()
    route = h.route("a", "up", {"path_prefix": "/"})
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])}, [route], workers=1)
    cfg["plugins"] = [plugin_path]
    gateway_factory(cfg)
    return port


def upstream_saw(port, name):
    resp = h.request(port, "GET", "/x")
    assert resp.status == 200, resp
    return [v for k, v in resp.json()["headers"] if k.lower() == name.lower()]


def test_current_module_loads_and_its_version_is_logged(tmp_path):
    rc, err, _ = check(tmp_path, "current", "-l", "info")
    assert rc == 0, err
    assert "plugin abi 9.9.9 (API %s) loaded from %s" % (API, module("current")) in err, err


def test_current_module_runs(gateway_factory, upstream_factory):
    port = run_through(gateway_factory, upstream_factory, {"name": "abi", "path": module("current")})
    assert upstream_saw(port, "X-Abi") == ["current"]


def test_older_minor_loads_and_fields_past_its_size_read_as_null(tmp_path):
    # abi_older.so says 2.0 and puts a string where 2.1's `version` sits: the
    # core copies only abi.size bytes, so it sees no version.
    rc, err, _ = check(tmp_path, "older", "-l", "info")
    assert rc == 0, err
    assert "plugin abi (no version) (API 2.0) loaded" in err, err
    assert "MUST-NOT-BE-READ" not in err


def test_older_minor_module_runs(gateway_factory, upstream_factory):
    port = run_through(gateway_factory, upstream_factory, {"name": "abi", "path": module("older")})
    assert upstream_saw(port, "X-Abi") == ["older"]


@pytest.mark.parametrize("variant, message", [
    ("newer", "was built for plugin API %s, newer than this tollgate's %s: upgrade tollgate or "
              "build the plugin against these headers" % (NEWER, API)),
    ("major", "was built for plugin API 3, this tollgate provides %s" % API),
    ("v1", "was built for plugin API 1, this tollgate provides %s" % API),
    # x86_64 sizes: the descriptor ends before request_head (64), 2.0 ends after reopen (112)
    ("small", "has a descriptor of 64 bytes, smaller than plugin API 2.0's 112: it was not built "
              "with TG_PLUGIN_ABI"),
])
def test_incompatible_module_is_a_config_error_at_the_entry(tmp_path, variant, message):
    rc, err, cfg = check(tmp_path, variant)
    assert rc == 1
    # FILE:LINE:COL of the entry's path: value (line 6 of config_text)
    assert err.startswith("%s:6:24: plugin %s %s" % (cfg, module(variant), message)), err


BUNDLED_CONFIG = """listen:
  - address: "127.0.0.1:1"
upstreams:
  up: { targets: ["127.0.0.1:2"] }
plugins:
  - { name: request-log, config: { path: stdout } }
  - name: jwt
    config: { keys: [{ algorithm: HS256, secret: "a-test-secret-of-at-least-32-bytes!!" }] }
  - name: rate-limit
    config: { key: ip, backend: local, limits: [{ rate: 1, per: 1s }] }
  - name: response-shape
    config: { client: "header:X-Client", default: web, profiles: { web: { exclude: [x] } } }
  - name: cors
    config: { origins: ["https://app.example.com"] }
  - name: ip-rules
    config: { allow: ["127.0.0.0/8"] }
  - name: key-auth
    config: { keys_file: keys.yaml }
  - name: headers
    config: { request: { set: { X-Gateway: tollgate } } }
routes:
  - { name: a, upstream: up }
"""


def test_bundled_plugins_carry_the_project_version(tmp_path):
    version = subprocess.run([h.BINARY, "--version"], stdout=subprocess.PIPE, check=True,
                             timeout=20).stdout.decode().split()[1]
    cfg = tmp_path / "bundled.yaml"
    cfg.write_text(BUNDLED_CONFIG)
    (tmp_path / "keys.yaml").write_text("consumers: []\n")
    p = subprocess.run([h.BINARY, "-t", "-l", "info", "-c", str(cfg)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, err
    for name in ("request-log", "jwt", "rate-limit", "response-shape", "cors", "ip-rules",
                 "key-auth", "headers"):
        assert "plugin %s %s (API %s) loaded from " % (name, version, API) in err, err


# ------------------------------------------------------------ pkg-config ----
@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`meson install --tags devel` of the build (headers and tollgate-plugin.pc) into a
    temporary DESTDIR, and the environment that makes pkg-config read it there."""
    if shutil.which("meson") is None or shutil.which("pkg-config") is None:
        pytest.fail("meson and pkg-config are needed to test the installed .pc")
    dest = tmp_path_factory.mktemp("destdir")
    subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet", "--tags", "devel",
                    "--destdir", str(dest)], check=True, stdout=subprocess.DEVNULL)
    pcs = glob.glob(str(dest / "**" / "tollgate-plugin.pc"), recursive=True)
    assert len(pcs) == 1, pcs
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.path.dirname(pcs[0])
    env["PKG_CONFIG_SYSROOT_DIR"] = str(dest)
    env["PKG_CONFIG_DISABLE_UNINSTALLED"] = "1"
    return dest, env


def test_pc_file_points_at_the_installed_headers(installed):
    dest, env = installed
    cflags = subprocess.run(["pkg-config", "--cflags", "tollgate-plugin"], env=env, check=True,
                            stdout=subprocess.PIPE).stdout.decode().split()
    incs = [f[2:] for f in cflags if f.startswith("-I")]
    assert any(os.path.isfile(os.path.join(i, "tollgate", "plugin.h")) and i.startswith(str(dest))
               for i in incs), cflags
    # Every public header is installed: the plugin API is what include/tollgate holds.
    public = sorted(os.listdir(os.path.join(h.REPO, "include", "tollgate")))
    inst = glob.glob(str(dest / "**" / "include" / "tollgate"), recursive=True)
    assert len(inst) == 1 and sorted(os.listdir(inst[0])) == public
    assert not any(h.REPO in f for f in cflags), cflags


def test_sample_builds_out_of_tree_with_pkg_config_and_runs(installed, tmp_path, gateway_factory,
                                                              upstream_factory):
    dest, env = installed
    src = tmp_path / "sample.c"
    shutil.copy(os.path.join(h.REPO, "tests", "plugins", "sample.c"), src)
    cmd = "cc $(pkg-config --cflags tollgate-plugin) -shared -fPIC -o sample.so sample.c"
    p = subprocess.run(["sh", "-c", cmd], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    assert p.returncode == 0, "%s\n%s" % (cmd, p.stdout.decode())
    so = str(tmp_path / "sample.so")
    up = upstream_factory("up")
    port = h.free_port()
    route = h.route("a", "up", {"path_prefix": "/"})
    route["plugins"] = [{"name": "sample", "path": so,
                         "config": {"tag": "oot", "respond_path": "/early", "respond_status": 418}}]
    cfg = h.gateway_config(port, {"up": h.upstream_conf([up.address])}, [route], workers=1)
    gateway_factory(cfg)
    resp = h.request(port, "GET", "/x")
    assert resp.status == 200, resp
    assert [v for k, v in resp.json()["headers"] if k.lower() == "x-chain"] == ["oot"]
    assert resp.header("X-Chain-Resp") == "oot"
    early = h.request(port, "GET", "/early")
    assert early.status == 418 and early.body == b"answered by the sample plugin\n"
