"""Workflow input that looks like an option: git values and agent prompts must stay values.

Real git repositories in tmp_path, real git subprocesses; agent CLIs are
argparse stand-ins that parse options the way the real ones do (an
unknown ``-x`` is an error, ``--`` ends the options).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.workflows.conftest import git

from agentcmd.workflows import gitops
from agentcmd.workflows.agents import AgentArgumentError, get_adapter


@pytest.fixture
def repo(tmp_path: Path, git_identity: None) -> Path:
    """A repository with one commit and an ``origin`` (a bare repository next to it)."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README").write_text("hello\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    git(tmp_path, "init", "-q", "--bare", str(tmp_path / "origin.git"))
    git(root, "remote", "add", "origin", str(tmp_path / "origin.git"))
    return root


async def test_a_branch_cannot_make_push_run_a_command(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(gitops.GitError) as info:
        await gitops.push(repo, branch=f"--receive-pack=touch {marker}; git-receive-pack")
    assert not marker.exists(), "the branch ran a command"
    assert info.value.code == "invalid_git_input" and "starts with '-'" in info.value.what


async def test_a_remote_cannot_be_an_option_either(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(gitops.GitError) as info:
        await gitops.push(repo, remote=f"--receive-pack=touch {marker}; git-receive-pack", branch="main")
    assert not marker.exists(), "the remote ran a command"
    assert info.value.code == "invalid_git_input"


async def test_a_base_cannot_make_diff_write_a_file(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "written"
    with pytest.raises(gitops.GitError) as info:
        await gitops.diff(repo, base=f"--output={target}")
    assert not target.exists(), "the base made git diff write a file"
    assert "starts with '-'" in info.value.what


@pytest.mark.parametrize("branch", ["-b", "+main", "a..b", "a b", "x.lock", ".hidden", "a//b", "a:b", "a@{1}", "@"])
async def test_branch_names_follow_check_ref_format(repo: Path, branch: str) -> None:
    with pytest.raises(gitops.GitError):
        await gitops.create_branch(repo, branch)
    assert git(repo, "branch", "--list") == "* main"


async def test_valid_values_still_work_after_end_of_options(repo: Path, tmp_path: Path) -> None:
    res = await gitops.create_branch(repo, "agentcmd/fix-1", base="main")
    assert res.branch == "agentcmd/fix-1"
    (repo / "README").write_text("changed\n")
    assert "+changed" in (await gitops.diff(repo, base="HEAD")).diff
    await gitops.commit(repo, "-not an option, a message")
    assert git(repo, "log", "-1", "--format=%s") == "-not an option, a message"
    pushed = await gitops.push(repo, branch="agentcmd/fix-1")
    assert pushed.ok and git(tmp_path / "origin.git", "branch", "--list", "agentcmd/fix-1")
    added = await gitops.worktree_add(repo, tmp_path / "wt", "agentcmd/wt", base="main")
    assert Path(added.path or "").joinpath("README").read_text() == "hello\n"
    await gitops.worktree_remove(repo, tmp_path / "wt")


GIT_FROM_INPUT = '''
from agentcmd import define_workflow

@define_workflow(id="ship", retries=3)
async def ship(ctx, step):
    return (await step.git("push", branch=ctx.input["branch"])).branch
'''


def test_step_git_refuses_an_option_branch_at_once(app_server: Any, write_workflow: Any, project: Path,
                                                   tmp_path: Path) -> None:
    """Through a workflow: the run fails on its first attempt (retrying cannot help) with a clear error."""
    git(project, "init", "-q", "-b", "main")
    write_workflow("ship.py", GIT_FROM_INPUT)
    marker = tmp_path / "pwned"
    run = app_server().driver.run("ship", {"branch": f"--receive-pack=touch {marker}; git-receive-pack"})
    assert run.status == "Failed"
    assert "not allowed" in json.dumps(run.output) and "starts with '-'" in json.dumps(run.output)
    assert not marker.exists()


# The stand-ins parse like the real CLIs: commander (claude), clap (codex), yargs (gemini).
CLAUDE = r'''#!{python}
import argparse, json, sys
p = argparse.ArgumentParser()
p.add_argument("-p", "--print", action="store_true")
p.add_argument("--output-format")
p.add_argument("--verbose", action="store_true")
p.add_argument("--model")
p.add_argument("--resume")
p.add_argument("prompt", nargs="?")
a = p.parse_args()
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
print(json.dumps({{"type": "result", "result": "got:" + (a.prompt or ""), "session_id": "s-1"}}))
'''
CODEX = r'''#!{python}
import argparse, sys
assert sys.argv[1] == "exec"
p = argparse.ArgumentParser()
p.add_argument("--model")
p.add_argument("rest", nargs="*")
a = p.parse_args(sys.argv[2:])
print("got:" + a.rest[-1])
'''
GEMINI = r'''#!{python}
import argparse
p = argparse.ArgumentParser()
p.add_argument("--model")
p.add_argument("--resume")
p.add_argument("-p", "--prompt")
print("got:" + p.parse_args().prompt)
'''


def install(bin_dir: Path, name: str, source: str, log: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / name
    exe.write_text(source.format(python=sys.executable, log=str(log)))
    exe.chmod(0o755)
    return exe


PROMPT_FROM_INPUT = '''
from agentcmd import define_workflow

@define_workflow(id="ask", retries=0)
async def ask(ctx, step):
    return (await step.agent("ask", prompt=ctx.input["prompt"])).text
'''


@pytest.mark.parametrize("prompt", ["-rf", "--help", "--model=evil do this"])
def test_a_prompt_starting_with_a_dash_reaches_claude_as_the_prompt(
        app_server: Any, write_workflow: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompt: str) -> None:
    log = tmp_path / "claude.jsonl"
    exe = install(tmp_path / "bin", "claude", CLAUDE, log)
    monkeypatch.setenv("PATH", f"{exe.parent}:{os.environ['PATH']}")
    write_workflow("ask.py", PROMPT_FROM_INPUT)
    run = app_server().driver.run("ask", {"prompt": prompt})
    assert run.status == "Completed", run.calls[-1]
    assert run.output == "got:" + prompt
    [argv] = [json.loads(line) for line in log.read_text().splitlines()]
    assert argv[-2:] == ["--", prompt]


@pytest.mark.parametrize("name,source", [("codex", CODEX), ("gemini", GEMINI)])
@pytest.mark.parametrize("prompt", ["-rf", "--help"])
def test_codex_and_gemini_get_a_dash_prompt_as_the_prompt(tmp_path: Path, name: str, source: str,
                                                          prompt: str) -> None:
    exe = install(tmp_path, name, source, tmp_path / "log")
    argv, stdin = get_adapter(name).command(str(exe), prompt, model="m1", resume=None)
    assert stdin is None
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "got:" + prompt


@pytest.mark.parametrize("field", ["model", "resume"])
def test_a_model_or_session_id_starting_with_a_dash_is_refused(field: str) -> None:
    with pytest.raises(AgentArgumentError, match="starts with '-'"):
        get_adapter("claude").command("claude", "hi", **{"model": None, "resume": None, field: "--evil"})
