"""Every example config in conf/ passes `tollgate -t` (README promises it)."""

import glob
import os
import re

import pytest

import tg_harness as h

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = sorted(glob.glob(os.path.join(REPO, "conf", "*.yaml")))


def test_there_are_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_config_is_valid(path):
    env = dict(os.environ, JWT_HS_SECRET="an-hs256-secret-of-at-least-32-bytes!!", OTLP_TOKEN="t")
    rc, err = h.run_check(path, env=env)
    assert rc == 0, err


def test_rate_limit_examples_do_not_key_on_client_chosen_headers():
    """A key the client writes freely (a header, alone or in a list) lets it
    mint a fresh bucket per request: no example may teach that."""
    for path in EXAMPLES:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                code = line.split("#", 1)[0]
                assert not re.match(r"\s*key:.*header:", code), "%s:%d: %s" % (path, n, line.strip())
