"""``agentcmd workspaces list|prune`` and the ``workspaces.prune_after`` policy, on real repositories.

Worktrees, branches and artifacts are made by real worktree runs of the
real app server (driven over HTTP as an engine does); the engine the CLI
and the policy ask is the FakeEngine of ``stack``, over real HTTP, told
each run's status and end time. Git is real everywhere (a bare repository
plays the remote).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.processes import free_port, run_cli
from tests.polling import wait_for
from tests.workflows.conftest import git

from agentcmd.workflows import cleanup, gitops

WORKTREE = '''
from agentcmd import define_workflow

@define_workflow(id="wt", workspace="worktree", retries=0)
async def wt(ctx, step):
    if ctx.input.get("commit", True):
        # A change of its own (two runs' identical commits in one second would be one commit), in a file
        # of its own (branches merged one after the other do not conflict).
        await step.cli("change", ["sh", "-c", 'echo changed > "change-$1.txt"', "sh", ctx.run_id])
        await step.git("commit", commit_message="agent change")
    await step.artifact("report.txt", "the report of " + ctx.run_id)
    if ctx.input.get("fail"):
        raise RuntimeError("tests still fail")
    return "ok"
'''

DAY = 86400.0


@pytest.fixture
def repo(project: Path, git_identity: None) -> Path:
    git(project, "init", "-q", "-b", "main")
    (project / ".gitignore").write_text(".agentcmd/\n")
    (project / "README").write_text("hello\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    (project / ".agentcmd" / "workflows" / "wt.py").write_text(WORKTREE)
    return project


@pytest.fixture
def data(agentcmd_home: Path) -> Path:
    return agentcmd_home / "data"


def iso(ago: float) -> str:
    return datetime.fromtimestamp(time.time() - ago, UTC).isoformat().replace("+00:00", "Z")


class Runs:
    """Real worktree runs, reported to the FakeEngine with the status and end time a test wants."""

    def __init__(self, stack: Any) -> None:
        self.s = stack

    def run(self, run_id: str, *, status: str | None = None, ended_ago: float | None = 0.0,
            **data: Any) -> Any:
        result = self.s.app.driver.run("wt", data, run_id=run_id)
        self.report(run_id, status or result.status, ended_ago, result.steps)
        return result

    def report(self, run_id: str, status: str, ended_ago: float | None = 0.0,
               steps: list[dict[str, Any]] | None = None) -> None:
        ended = None if status not in cleanup.FINISHED or ended_ago is None else iso(ended_ago)
        self.s.engine.runs[run_id] = {"run_id": run_id, "function_id": "agentcmd-wt", "status": status,
                                      "ended_at": ended, "output": None, "error": None}
        self.s.engine.steps[run_id] = list(steps or [])


@pytest.fixture
def runs(stack: Any, repo: Path) -> Runs:
    return Runs(stack())


def backdate(data: Path, repo: Path, key: str, days: float) -> None:
    """Make a run's worktree and artifacts look untouched for ``days`` (as after a real wait)."""
    when = time.time() - days * DAY
    paths = [data / "worktrees" / key, data / "artifacts" / key.upper(),
             repo / ".git" / "worktrees" / key / "index", repo / ".git" / "worktrees" / key / "logs" / "HEAD",
             repo / ".git" / "logs" / "refs" / "heads" / "agentcmd" / key]
    for path in paths:
        if path.exists():
            os.utime(path, (when, when))


def cli(repo: Path, *args: str, ok: bool = True) -> Any:
    from typer.testing import CliRunner

    from agentcmd.cli import app

    res = CliRunner().invoke(app, ["workspaces", *args, "--project", str(repo)])
    if ok:
        assert res.exit_code == 0, (res.output, res.exception)
    return res


def as_json(repo: Path, *args: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(cli(repo, *args, "--json").stdout)
    return out


def by_name(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["kind"], i["name"]): i for i in items}


def test_list_shows_each_item_with_its_run_status_end_age_size_and_branch_state(
        runs: Runs, repo: Path, data: Path) -> None:
    runs.run("01FAILED", fail=True, ended_ago=3 * DAY)
    runs.run("01CLEAN", commit=False)
    items = by_name(as_json(repo, "list"))
    wt = items[("worktree", "01failed")]
    assert wt["run_id"] == "01FAILED" and wt["status"] == "Failed" and wt["ended_at"].endswith("Z")
    assert wt["path"] == str(data / "worktrees" / "01failed") and wt["bytes"] > 0 and wt["dirty"] is False
    branch = items[("branch", "agentcmd/01failed")]
    assert branch["unmerged"] == 1 and branch["upstream"] is None and branch["pushed"] is False
    assert items[("branch", "agentcmd/01clean")]["unmerged"] == 0     # no commit of its own
    assert ("worktree", "01clean") not in items                       # a completed run removes its worktree
    art = items[("artifacts", "01FAILED")]
    assert art["status"] == "Failed" and art["bytes"] == len("the report of 01FAILED")
    text = cli(repo, "list").stdout
    assert "agentcmd/01failed" in text and "1 unmerged, no upstream" in text and "Failed" in text


def test_dry_run_prints_exactly_what_would_go_and_removes_nothing_then_prune_removes_that(
        runs: Runs, repo: Path, data: Path) -> None:
    runs.run("01CLEAN", commit=False, ended_ago=9 * DAY)
    runs.run("01FAILED", fail=True, ended_ago=9 * DAY)
    backdate(data, repo, "01failed", 9)
    backdate(data, repo, "01clean", 9)
    before = sorted(p.name for p in (data / "artifacts").iterdir()), git(repo, "branch")
    dry = cli(repo, "prune", "--dry-run").stdout.splitlines()
    would = sorted(line.split(":")[0] for line in dry if line.startswith("would remove "))
    assert would == ["would remove artifacts 01CLEAN (" + str(data / "artifacts" / "01CLEAN") + ")",
                     "would remove artifacts 01FAILED (" + str(data / "artifacts" / "01FAILED") + ")",
                     "would remove branch agentcmd/01clean",
                     "would remove worktree 01failed (" + str(data / "worktrees" / "01failed") + ")"]
    assert "kept branch agentcmd/01failed: has 1 commit(s) not on its base: kept unless --force" in dry
    assert dry[-1].startswith("4 item(s) would be removed")
    assert (sorted(p.name for p in (data / "artifacts").iterdir()), git(repo, "branch")) == before
    assert (data / "worktrees" / "01failed").is_dir()

    done = cli(repo, "prune").stdout.splitlines()
    assert sorted(line.split(":")[0] for line in done if line.startswith("removed ")) == \
        [w.replace("would remove", "removed") for w in would]
    assert not list((data / "artifacts").iterdir()) and not (data / "worktrees" / "01failed").exists()
    assert git(repo, "branch", "--list", "agentcmd/*").split() == ["agentcmd/01failed"]   # unmerged: kept
    assert "01failed" not in git(repo, "worktree", "list")                               # pruned from git too


def test_older_than_keeps_what_ended_or_changed_recently(runs: Runs, repo: Path, data: Path) -> None:
    runs.run("01OLD", fail=True, ended_ago=10 * DAY)
    runs.run("01NEW", fail=True, ended_ago=60)
    backdate(data, repo, "01old", 10)
    backdate(data, repo, "01new", 10)   # files old, but the run ended a minute ago
    out = cli(repo, "prune", "--older-than", "7d", "--worktrees", "--artifacts").stdout
    assert not (data / "worktrees" / "01old").exists() and not (data / "artifacts" / "01OLD").exists()
    assert (data / "worktrees" / "01new").is_dir() and (data / "artifacts" / "01NEW").is_dir()
    assert "kept worktree 01new" in out and "within --older-than 7.0d" in out
    assert git(repo, "branch", "--list", "agentcmd/01old")  # --worktrees --artifacts: branches untouched
    cli(repo, "prune", "--older-than", "30s", "--worktrees")
    assert not (data / "worktrees" / "01new").exists()


def test_items_of_unfinished_runs_and_a_worktree_a_resumed_run_uses_are_kept_even_with_force(
        runs: Runs, repo: Path, data: Path) -> None:
    first = runs.run("01FIRST", fail=True, ended_ago=9 * DAY)
    runs.run("01WAITING", fail=True, status="Running")
    # A resumed run in flight: its memoised workspace step points at the first run's kept worktree.
    runs.report("01RESUMED", "Running", steps=[s for s in first.steps if s["name"] == "workspace"])
    out = cli(repo, "prune", "--older-than", "0", "--force").stdout
    assert (data / "worktrees" / "01waiting").is_dir() and (data / "artifacts" / "01WAITING").is_dir()
    assert "kept worktree 01waiting" in out and "run is Running" in out
    assert (data / "worktrees" / "01first").is_dir()
    assert "in use by run 01RESUMED, which has not finished" in out
    assert git(repo, "branch", "--list", "agentcmd/01first")     # checked out in the kept worktree
    assert not (data / "artifacts" / "01FIRST").exists()         # the artifacts are the first run's alone


def test_unmerged_or_unpushed_branches_are_kept_unless_forced_merged_pushed_ones_go(
        runs: Runs, repo: Path, data: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    for run_id in ("01MERGED", "01UNPUSHED", "01UNMERGED"):
        runs.run(run_id, fail=True, ended_ago=9 * DAY)
    cli(repo, "prune", "--older-than", "0", "--worktrees")      # the branches are no longer checked out
    for name in ("agentcmd/01merged", "agentcmd/01unpushed"):
        git(repo, "push", "-q", "--set-upstream", "origin", name)
        git(repo, "merge", "-q", "--no-edit", name)
    # One more commit on 01unpushed, merged into main but never pushed.
    git(repo, "switch", "-q", "agentcmd/01unpushed")
    (repo / "more").write_text("more\n")
    git(repo, "add", "more")
    git(repo, "commit", "-q", "-m", "more")
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "--no-edit", "agentcmd/01unpushed")
    items = by_name(as_json(repo, "list", "--branches"))
    assert items[("branch", "agentcmd/01merged")]["pushed"] is True
    assert items[("branch", "agentcmd/01unpushed")]["unpushed"] == 1
    out = cli(repo, "prune", "--older-than", "0", "--branches").stdout
    assert "removed branch agentcmd/01merged: run Failed" in out
    assert "kept branch agentcmd/01unpushed: has 1 commit(s) not pushed to refs/remotes/origin/agentcmd/01unpushed" \
        in out
    assert "kept branch agentcmd/01unmerged: has 1 commit(s) not on its base" in out
    assert sorted(git(repo, "branch", "--list", "agentcmd/*").split()) == ["agentcmd/01unmerged",
                                                                          "agentcmd/01unpushed"]
    # --base: against main only, the unmerged branch still has its commit; --force takes both.
    assert by_name(as_json(repo, "list", "--branches", "--base", "main"))[
        ("branch", "agentcmd/01unmerged")]["unmerged"] == 1
    cli(repo, "prune", "--older-than", "0", "--branches", "--force")
    assert git(repo, "branch", "--list", "agentcmd/*") == ""


def test_a_worktree_with_uncommitted_changes_is_kept_unless_forced(runs: Runs, repo: Path, data: Path) -> None:
    runs.run("01DIRTY", fail=True, ended_ago=9 * DAY)
    (data / "worktrees" / "01dirty" / "notes.txt").write_text("unsaved work\n")
    planned = by_name(as_json(repo, "prune", "--older-than", "0", "--worktrees", "--dry-run"))
    assert planned[("worktree", "01dirty")]["action"] == "keep" and planned[("worktree", "01dirty")]["dirty"] is True
    assert planned[("worktree", "01dirty")]["removed"] is False
    out = cli(repo, "prune", "--older-than", "0", "--worktrees").stdout
    assert "kept worktree 01dirty" in out and "has uncommitted changes: kept unless --force" in out
    assert (data / "worktrees" / "01dirty" / "notes.txt").exists()
    cli(repo, "prune", "--older-than", "0", "--worktrees", "--force")
    assert not (data / "worktrees" / "01dirty").exists()


def test_names_agentcmd_does_not_make_are_never_touched_and_no_input_becomes_a_git_option(
        runs: Runs, repo: Path, data: Path, tmp_path: Path) -> None:
    runs.run("01REAL", fail=True, ended_ago=9 * DAY)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n")
    hostile = ["--force", "-rf", "..", ".hidden", "a b"]
    for name in hostile:
        if name != "..":
            (data / "worktrees" / name).mkdir()
            (data / "artifacts" / name).mkdir()
    (data / "worktrees" / "01link").symlink_to(outside)
    (data / "artifacts" / "01LINK").symlink_to(outside)
    for branch in ("agentcmd/-x", "agentcmd/a/b", "agentcmd/Upper"):
        git(repo, "branch", branch)
    out = cli(repo, "prune", "--older-than", "0", "--force").stdout
    for name in ("--force", "-rf", ".hidden", "a b"):
        assert (data / "worktrees" / name).is_dir() and (data / "artifacts" / name).is_dir()
        assert f"kept worktree {name}" in out
    assert (outside / "keep.txt").read_text() == "mine\n" and (data / "worktrees" / "01link").is_symlink()
    assert "kept worktree 01link" in out and "not a directory: left alone" in out
    assert sorted(git(repo, "branch", "--list", "agentcmd/*").split()) == ["agentcmd/-x", "agentcmd/Upper",
                                                                          "agentcmd/a/b"]
    assert not (data / "worktrees" / "01real").exists()   # the real run's items went
    # --base is a revision, never an option.
    res = run_cli("workspaces", "list", "--base=--output=/tmp/x", "--project", str(repo))
    assert res.returncode == 2 and "--base '--output=/tmp/x' is not a revision" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    for bad in ("main", "agentcmd/--x", "agentcmd/a..b", "agentcmd/a b", "agentcmd/", "agentcmd/x.lock"):
        with pytest.raises(gitops.GitError):
            cleanup.check_run_branch(bad)
    assert cleanup.check_run_branch("agentcmd/01abc") == "agentcmd/01abc"


def test_engine_down_lists_with_status_unknown_and_prune_keeps_unless_forced(
        runs: Runs, repo: Path, data: Path) -> None:
    runs.run("01GONE", fail=True, ended_ago=9 * DAY)
    env = {"INNGEST_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    listed = run_cli("workspaces", "list", "--project", str(repo), env=env)
    assert listed.returncode == 0, listed.stderr
    assert "not reachable" in listed.stderr and "run statuses are unknown" in listed.stderr
    assert "agentcmd/01gone" in listed.stdout and "unknown" in listed.stdout
    kept = run_cli("workspaces", "prune", "--older-than", "0", "--project", str(repo), env=env)
    assert kept.returncode == 0, kept.stderr
    assert "kept worktree 01gone" in kept.stdout and "the engine could not be asked: kept unless --force" in kept.stdout
    assert (data / "worktrees" / "01gone").is_dir() and (data / "artifacts" / "01GONE").is_dir()
    forced = run_cli("workspaces", "prune", "--older-than", "0", "--force", "--project", str(repo), env=env)
    assert forced.returncode == 0, forced.stderr
    assert not (data / "worktrees" / "01gone").exists() and not (data / "artifacts" / "01GONE").exists()


def test_a_run_the_engine_does_not_know_is_unknown_and_kept(runs: Runs, repo: Path, data: Path) -> None:
    runs.run("01PRUNED", fail=True, ended_ago=9 * DAY)
    del runs.s.engine.runs["01PRUNED"]            # e.g. pruned by the engine's retention
    out = cli(repo, "prune", "--older-than", "0", "--artifacts").stdout
    assert "the engine does not know this run" in out and (data / "artifacts" / "01PRUNED").is_dir()


def test_bad_older_than_is_a_clear_error(repo: Path) -> None:
    res = run_cli("workspaces", "prune", "--older-than", "soon", "--project", str(repo))
    assert res.returncode == 2 and "--older-than: 'soon' is not a duration" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_prune_after_policy_prunes_in_the_app_server_without_force(
        runs: Runs, repo: Path, data: Path, app_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    runs.run("01OLDDONE", commit=False, ended_ago=3 * DAY)
    runs.run("01OLDFAIL", fail=True, ended_ago=3 * DAY)
    runs.run("01STILL", fail=True, status="Running")
    for key in ("01olddone", "01oldfail", "01still"):
        backdate(data, repo, key, 3)
    monkeypatch.setenv("AGENTCMD_WORKSPACES__PRUNE_AFTER", "2d")
    monkeypatch.setenv("INNGEST_BASE_URL", runs.s.engine_url)
    server = app_server(repo)            # a second app server, same engine, with the policy on
    policy = server.app.state.workspace_policy
    wait_for(lambda: policy.passes >= 1, 30, "the first automatic cleanup pass")
    assert not (data / "worktrees" / "01oldfail").exists() and not (data / "artifacts" / "01OLDFAIL").exists()
    assert not (data / "artifacts" / "01OLDDONE").exists()
    assert git(repo, "branch", "--list", "agentcmd/01olddone") == ""             # merged: gone
    assert git(repo, "branch", "--list", "agentcmd/01oldfail")                  # unmerged: no force
    assert (data / "worktrees" / "01still").is_dir() and (data / "artifacts" / "01STILL").is_dir()
    assert "branch agentcmd/01olddone" in policy.last["removed"] and policy.last["engine_note"] is None
    assert server.get("/health").status_code == 200


def test_the_policy_is_off_by_default(runs: Runs, repo: Path, app_server: Any) -> None:
    assert app_server(repo).app.state.workspace_policy is None


def test_the_setting_is_set_and_read_back_with_agentcmd_config() -> None:
    res = run_cli("config", "set", "workspaces", '{"prune_after": "14d"}')
    assert res.returncode == 0, res.stderr
    got = run_cli("config", "get", "workspaces")
    assert got.returncode == 0 and json.loads(got.stdout) == {"prune_after": "14d", "check_every": "1h"}, got.stderr
    bad = run_cli("config", "set", "workspaces", '{"prune_after": "soon"}')
    assert bad.returncode != 0 and "workspaces.prune_after: 'soon' is not a duration" in bad.stderr, bad.stderr


WAITING = '''
from agentcmd import define_workflow

@define_workflow(id="wait", workspace="worktree", retries=0)
async def wait(ctx, step):
    await step.cli("change", "echo changed > README")
    await step.git("commit", commit_message="agent change")
    await step.artifact("report.txt", "halfway")
    await step.wait_for_event("go", event="test/go", timeout="1h")
    return "ok"
'''


def test_with_the_real_engine_a_waiting_run_is_kept_and_a_failed_one_pruned(
        spawn: Any, port: int, repo: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real dev engine and the real app server: the engine's own statuses, end times and step outputs."""
    from tests.workflows.fakeengine import ServerThread

    from agentcmd.server import SERVE_PATH
    from agentcmd.server.app import create_app
    from agentcmd.workflows.context import set_runtime

    (repo / ".agentcmd" / "workflows" / "wait.py").write_text(WAITING)
    engine_url = f"http://127.0.0.1:{port}"
    engine = spawn("engine", "dev", "--host", "127.0.0.1", "--port", str(port), "--no-discovery",
                   "--poll-interval", "0.2")
    wait_for(lambda: httpx.get(f"{engine_url}/health", timeout=2).status_code == 200, 30,
             "the engine to answer /health", engine.output)
    monkeypatch.setenv("INNGEST_DEV", "1")
    monkeypatch.setenv("INNGEST_BASE_URL", engine_url)
    set_runtime(None)
    server = ServerThread(create_app(repo, entry_points=False)).start()
    try:
        assert httpx.put(server.url + SERVE_PATH, timeout=30).status_code == 200

        def start(workflow: str, data: dict[str, Any]) -> str:
            res = httpx.post(f"{server.url}/api/workflows/{workflow}/runs", json={"input": data}, timeout=60)
            assert res.status_code == 202, res.text
            return str(res.json()["data"]["run_id"])

        def status(run_id: str) -> str:
            return str(httpx.get(f"{engine_url}/v1/runs/{run_id}", timeout=10).json()["data"]["status"])

        failed = start("wt", {"fail": True})
        waiting = start("wait", {})
        wait_for(lambda: status(failed) == "Failed", 60, "the failing run to fail")
        wait_for(lambda: (data / "artifacts" / waiting / "report.txt").exists(), 60, "the waiting run to wait")
        f_key, w_key = failed.lower(), waiting.lower()

        items = by_name(as_json(repo, "list"))
        assert items[("worktree", f_key)]["status"] == "Failed" and items[("worktree", f_key)]["run_id"] == failed
        assert items[("worktree", w_key)]["status"] == "Running"
        assert items[("branch", f"agentcmd/{f_key}")]["unmerged"] == 1

        out = cli(repo, "prune", "--older-than", "0", "--force").stdout
        assert not (data / "worktrees" / f_key).exists() and not (data / "artifacts" / failed).exists()
        assert git(repo, "branch", "--list", f"agentcmd/{f_key}") == ""
        assert (data / "worktrees" / w_key).is_dir() and (data / "artifacts" / waiting).is_dir()
        assert f"kept worktree {w_key}" in out and "run is Running" in out

        assert httpx.delete(f"{engine_url}/v1/runs/{waiting}", timeout=10).status_code == 200
        wait_for(lambda: status(waiting) == "Cancelled", 30, "the cancel")
        cli(repo, "prune", "--older-than", "0", "--force")
        assert not (data / "worktrees" / w_key).exists() and not (data / "artifacts" / waiting).exists()
        assert git(repo, "branch", "--list", "agentcmd/*") == ""
    finally:
        server.stop()
