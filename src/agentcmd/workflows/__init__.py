"""The workflow DSL on the official Inngest SDK.

    define.py      define_workflow -> Workflow (an inngest.Function)
    spec.py        WorkflowSpec: what define_workflow was given, checked
    context.py     ctx (WorkflowContext) and the process-wide Runtime
    steps.py       step: phase, cli, agent, git, sleep, wait_for_event, run, log, artifact
    questions.py   step.approval / step.ask: durable questions to a human, their records
    results.py     CliResult, AgentResult, GitResult (rebuilt from memoised JSON)
    agents.py      claude / codex / gemini CLI adapters
    process.py     subprocess groups: tail-truncated output, timeout, cancel
    gitops.py      git and gh actions
    workspace.py   stay / branch / worktree per run
    schema.py      args_schema: JSON Schema subset or pydantic model
    durations.py   "5s", "30m", "1h30m"
    loading.py     .agentcmd/workflows/*.py and entry points, with load errors
"""

from agentcmd.workflows.define import Workflow, define_workflow
from agentcmd.workflows.questions import Approval, QuestionTimedOut

__all__ = ["Approval", "QuestionTimedOut", "Workflow", "define_workflow"]
