"""Every example config in conf/ passes `tollgate -t` (README promises it)."""

import glob
import os

import pytest

import tg_harness as h

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = sorted(glob.glob(os.path.join(REPO, "conf", "*.yaml")))


def test_there_are_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_config_is_valid(path):
    env = dict(os.environ, JWT_HS_SECRET="an-hs256-secret-of-at-least-32-bytes!!")
    rc, err = h.run_check(path, env=env)
    assert rc == 0, err
