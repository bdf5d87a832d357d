"""`flywheel rlaas ...`: policies, interactions, rewards, exports and adapters from the command line."""

from __future__ import annotations

import click

from flywheel.plugins.rlaas.adapters_cli import adapters
from flywheel.plugins.rlaas.exports_cli import exports
from flywheel.plugins.rlaas.interactions_cli import interactions
from flywheel.plugins.rlaas.policies_cli import policies
from flywheel.plugins.rlaas.reward_model import reward_model_cli
from flywheel.plugins.rlaas.rewards_cli import pairs, rewards


@click.group()
def rlaas() -> None:
    """The LLM gateway: its policies, the interactions it recorded, and the training loop on them."""


for command in (policies, interactions, rewards, pairs, exports, reward_model_cli, adapters):
    rlaas.add_command(command)
