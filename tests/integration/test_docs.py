"""The man pages: generated from docs/man/*.md, every key the config loader
accepts documented in tollgate.yaml(5) and no documented key a ghost, every
command-line option in tollgate(8)."""

import os
import re
import shutil
import subprocess

import pytest

import tg_harness as h

DOCS = os.path.join(h.REPO, "docs", "man")
BUILD = os.environ.get("TOLLGATE_BUILD_DIR", os.path.join(h.REPO, "build"))


def documented_keys():
    with open(os.path.join(DOCS, "tollgate.yaml.5.md"), encoding="utf-8") as f:
        text = f.read()
    keys = text.split("\n## KEYS\n", 1)[1].split("\n## FILES", 1)[0]  # KEYS and PLUGIN KEYS
    return re.findall(r"^### `([^`]+)`$", keys, re.M)


def loader_keys():
    tool = os.path.join(BUILD, "tests", "conf_keys")
    data = os.path.join(h.REPO, "tests", "integration", "data", "all_sections.yaml")
    env = dict(os.environ, TG_TEST_PLUGIN_DIR=os.path.join(BUILD, "plugins"))
    p = subprocess.run([tool, data], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, env=env)
    assert p.returncode == 0, p.stderr.decode()
    return set(line for line in p.stdout.decode().split("\n") if line)


def parents(key):
    """listen[].tls.protocols -> listen, listen[].tls (the maps above it)."""
    out = []
    for m in re.finditer(r"\.|\[\]", key):
        out.append(key[:m.start()])
    return [p for p in out if p and not p.endswith("<name>")]


def test_every_loader_key_is_documented_and_no_ghosts():
    docs = documented_keys()
    assert len(docs) == len(set(docs)), "documented twice: %r" % sorted(k for k in docs if docs.count(k) > 1)
    accepted = loader_keys()
    missing = sorted(accepted - set(docs))
    ghosts = sorted(set(docs) - accepted)
    assert not missing, "keys the loader accepts but tollgate.yaml(5) does not describe: %r" % missing
    assert not ghosts, "keys tollgate.yaml(5) describes but the loader does not accept: %r" % ghosts


def test_every_key_has_type_and_default_line():
    with open(os.path.join(DOCS, "tollgate.yaml.5.md"), encoding="utf-8") as f:
        text = f.read()
    for key in documented_keys():
        body = text.split("### `%s`\n" % key, 1)[1]
        first = body.split("\n", 1)[0]
        assert re.match(r"\*[^*]+\* · (default|required|one of|instead of)", first), (key, first)


def test_every_option_in_tollgate_8():
    p = subprocess.run([h.BINARY, "--help"], stdout=subprocess.PIPE, timeout=10)
    options = set(re.findall(r"--([a-z-]+)", p.stdout.decode()))
    assert {"config", "test", "dump", "signal", "pid", "build-info", "version", "help"} <= options
    with open(os.path.join(DOCS, "tollgate.8.md"), encoding="utf-8") as f:
        page = f.read()
    for opt in options:
        assert "`--%s`" % opt in page, opt


@pytest.mark.parametrize("page", ["tollgate.8", "tollgate.yaml.5"])
def test_pages_render_without_warnings(tmp_path, page):
    out = tmp_path / page
    subprocess.run([os.path.join(h.REPO, "scripts", "gen-man"), os.path.join(DOCS, page + ".md"), str(out), "1.0"],
                   check=True, timeout=30)
    built = os.path.join(BUILD, page)
    assert os.path.exists(built), "meson builds %s" % built
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(out)], stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0 and p.stderr == b"", p.stderr.decode()
    text = subprocess.run(["groff", "-man", "-Tutf8", str(out)], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    text = re.sub(".\x08", "", text)  # overstrike bold
    assert "NAME" in text and ("OPTIONS" in text or "KEYS" in text)


def test_readme_links_the_pages():
    with open(os.path.join(h.REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert "docs/man/tollgate.yaml.5.md" in readme and "docs/man/tollgate.8.md" in readme
