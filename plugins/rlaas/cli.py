"""`flywheel rlaas ...`: policies and interactions from the command line."""

from __future__ import annotations

import click

from flywheel.plugins.rlaas.interactions_cli import interactions
from flywheel.plugins.rlaas.policies_cli import policies


@click.group()
def rlaas() -> None:
    """The LLM gateway: its policies, and the interactions it recorded."""


rlaas.add_command(policies)
rlaas.add_command(interactions)
