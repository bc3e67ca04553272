"""The key handover: a pipe only the child inherits, read once, never in the child's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agentcmd.handover import SECRETS_FD_ENV, handover_env

CHILD = """
import json, os, sys
from agentcmd import handover
first = handover.handed_keys()
again = handover.handed_keys()
environ = open(f"/proc/{os.getpid()}/environ", "rb").read()
print(json.dumps({"first": first, "again": again, "fd_var": os.environ.get("AGENTCMD_SECRETS_FD"),
                  "in_environ": b"secret-value" in environ, "key": handover.key("INNGEST_SIGNING_KEY")}))
"""


def test_a_child_reads_the_keys_once_and_they_are_not_in_its_environment() -> None:
    env, fds = handover_env({"PATH": "/usr/bin:/bin", SECRETS_FD_ENV: "99"}, {"INNGEST_SIGNING_KEY": "secret-value"})
    try:
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, pass_fds=fds, capture_output=True,
                             text=True, timeout=60, check=True).stdout
    finally:
        for fd in fds:
            os.close(fd)
    result = json.loads(out)
    assert result == {"first": {"INNGEST_SIGNING_KEY": "secret-value"},
                      "again": {"INNGEST_SIGNING_KEY": "secret-value"}, "fd_var": None, "in_environ": False,
                      "key": "secret-value"}


def test_no_secrets_no_pipe() -> None:
    env, fds = handover_env({"A": "1", SECRETS_FD_ENV: "7"}, {})
    assert env == {"A": "1"} and fds == ()


def test_a_bad_descriptor_is_a_clear_error(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-c", "from agentcmd import handover; handover.handed_keys()"],
                         env={"PATH": "/usr/bin:/bin", SECRETS_FD_ENV: "250", "AGENTCMD_HOME": str(tmp_path)},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "cannot read the keys from descriptor AGENTCMD_SECRETS_FD=250" in res.stderr
