"""The `reconciler` group: which module holds each command, loaded only when used.

A command's module (and what it imports) loads when that command runs, or when
help lists every command; `reconciler validate` never imports the API client.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import click

from reconciler import __version__
from reconciler.cli.shared import ReconcilerGroup, Runtime

# Command name -> "module:attribute" under reconciler.cli.
COMMANDS = {
    "apply": "apply:apply",
    "ci": "ci:ci",
    "emulator": "emulator:emulator",
    "environments": "environments:environments",
    "export": "export:export",
    "plan": "plan:plan",
    "policy": "policy:policy_group",
    "promote": "promote:promote",
    "schema": "schema:schema",
    "show": "show:show",
    "validate": "validate:validate",
    "verify": "verify:verify",
}


class LazyCommands(MutableMapping[str, click.Command]):
    """`Group.commands` whose entries import their module when first looked up.

    Names (iteration, `in`, len) need no import; `main.commands["plan"]` imports
    reconciler.cli.plan. Commands added at run time are kept as given.
    """

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = dict(table)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in self._table:
                raise KeyError(name)
            module, _, attribute = self._table[name].partition(":")
            command: Any = getattr(importlib.import_module(f"reconciler.cli.{module}"), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"reconciler.cli.{module}.{attribute} is not a click command")
            self._loaded[name] = command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._table.pop(name, None)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self._table, *self._loaded}))

    def __len__(self) -> int:
        return len({*self._table, *self._loaded})

    def __contains__(self, name: object) -> bool:
        return name in self._table or name in self._loaded


class LazyGroup(ReconcilerGroup):
    """A ReconcilerGroup whose commands (COMMANDS) import on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(COMMANDS)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Declarative GitOps reconciler for Amigo services."""
    ctx.ensure_object(Runtime)
