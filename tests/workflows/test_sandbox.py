"""Step processes cannot read the config file that holds the keys (Landlock, Linux).

Real app server, real workflow, real shell steps: the attack was a step
running ``cat $AGENTCMD_HOME/config.json``.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from agentcmd.workflows.sandbox import landlock_abi

pytestmark = pytest.mark.skipif(landlock_abi() < 1, reason="this kernel has no Landlock")

SECRET = "signkey-prod-" + secrets.token_hex(32)

READER = '''
from agentcmd import define_workflow

@define_workflow(id="reader", retries=0)
async def reader(ctx, step):
    config = await step.cli("config", ["cat", ctx.input["config"]], check=False)
    sibling = await step.cli("sibling", ["cat", ctx.input["sibling"]], check=False)
    project = await step.cli("project", "cat README && echo new > made.txt && cat made.txt", check=False)
    link = await step.cli("link", ["sh", "-c", 'ln -s "$1" alias.json; cat alias.json; cp "$1" copy.json',
                                   "sh", ctx.input["config"]], check=False)
    return {"config": [config.exit_code, config.stdout, config.stderr], "sibling": sibling.stdout,
            "project": project.stdout, "link": link.stdout}
'''


def write_home(home: Path) -> tuple[Path, Path]:
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.json"
    config.write_text(json.dumps({"signing_key": SECRET}))
    config.chmod(0o600)
    sibling = home / "notes.txt"
    sibling.write_text("readable\n")
    return config, sibling


def test_a_step_cannot_read_the_config_file_but_reads_everything_else(
        app_server: Any, write_workflow: Any, project: Path, agentcmd_home: Path) -> None:
    config, sibling = write_home(agentcmd_home)
    (project / "README").write_text("project file\n")
    write_workflow("reader.py", READER)
    run = app_server().driver.run("reader", {"config": str(config), "sibling": str(sibling)})
    assert run.status == "Completed", run.calls[-1]
    code, out, err = run.output["config"]
    assert SECRET not in out and code != 0 and "Permission denied" in err
    assert run.output["sibling"] == "readable\n"
    assert run.output["project"] == "project file\nnew\n"
    assert SECRET not in run.output["link"] and not (project / "copy.json").exists()


def test_step_sandbox_false_turns_it_off(app_server: Any, write_workflow: Any, project: Path,
                                         agentcmd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCMD_STEP_SANDBOX", "false")
    config, sibling = write_home(agentcmd_home)
    (project / "README").write_text("x\n")
    write_workflow("reader.py", READER)
    run = app_server().driver.run("reader", {"config": str(config), "sibling": str(sibling)})
    assert SECRET in run.output["config"][1]
