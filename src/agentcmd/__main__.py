"""``python -m agentcmd``: the same entry point as the ``agentcmd`` script."""

from agentcmd.cli import main

if __name__ == "__main__":
    main()
