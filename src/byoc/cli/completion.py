"""`byoc completion bash|zsh|fish`: print the shell completion script (click's mechanism)."""

from __future__ import annotations

import click

COMPLETE_VAR = "_BYOC_COMPLETE"  # click's default for prog_name "byoc"


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion_cmd(shell: str) -> int:
    """Print the completion script for SHELL. Commands, options and endpoint names (one
    ListEndpoints of the region) complete on Tab.

    \b
    bash:  eval "$(byoc completion bash)"   (in ~/.bashrc; bash 4.4 or newer)
    zsh:   eval "$(byoc completion zsh)"    (in ~/.zshrc)
    fish:  byoc completion fish > ~/.config/fish/completions/byoc.fish
    """
    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root()
    completion_class = get_completion_class(shell)
    assert completion_class is not None  # every choice is one of click's shells
    click.echo(completion_class(root.command, {}, root.info_name or "byoc", COMPLETE_VAR).source())
    return 0


COMMANDS = [completion_cmd]
