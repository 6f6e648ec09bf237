"""The ``forgeline`` console script: the command runs in a warm launcher when one listens, else in this process."""

from __future__ import annotations

import sys


def main() -> None:
    """Run ``forgeline`` with this process's arguments and exit with the command's exit code."""
    from forgeline.cli.warm_command import run_in_launcher

    code = run_in_launcher(sys.argv)
    if code is None:
        from forgeline.cli.main import main as run_here

        code = run_here()
    sys.exit(code)
