"""mkdocs hook: the reference pages are written from the code, so they cannot drift.

`<!-- digest:settings -->` becomes the table of every setting (key, default, meaning),
read from the typed settings schema (`digest.config.Settings`: each field's docstring is
its meaning); `<!-- digest:commands -->` becomes every command's help, read from the
CLI itself (`digest.cli.cli`). tests/test_docs.py checks both are complete.
"""

from __future__ import annotations

import inspect
from typing import Any

import click
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

SETTINGS_MARK = "<!-- digest:settings -->"
COMMANDS_MARK = "<!-- digest:commands -->"
LOADER_FIELDS = ("root", "origin")          # set by the loader, never written in config.toml


def settings_rows(model: type[BaseModel] | None = None, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, meaning) for every setting, in the order the schema declares them."""
    from digest.config import Settings
    model = model or Settings
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        if name in LOADER_FIELDS:
            continue
        key = prefix + (field.alias or name)
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            rows += settings_rows(inner, key + ("[]." if annotation is not inner else "."))
        else:
            rows.append((key, _default(field.default), " ".join((field.description or "").split())))
    return rows


def _default(value: Any) -> str:
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value!r}`"


def settings_table() -> str:
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{key}` | {default} | {meaning.replace('|', '&#124;')} |" for key, default, meaning in settings_rows()]
    return "\n".join(lines)


def commands(group: click.Group | None = None, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    """('digest fetch', its command) for every command and subcommand, in alphabetical order."""
    from digest.cli import cli
    group = group or cli
    found: list[tuple[str, click.Command]] = []
    for name in sorted(group.commands):
        command = group.commands[name]
        full = (*path, name)
        if isinstance(command, click.Group):
            found += commands(command, full)
        else:
            found.append((" ".join(("digest", *full)), command))
    return found


def commands_reference() -> str:
    from digest.cli import cli
    parts = [_command("digest", cli, "Global options (before the command)")]
    parts += [_command(name, command) for name, command in commands()]
    return "\n".join(parts)


def _command(name: str, command: click.Command, title: str | None = None) -> str:
    with click.Context(command, info_name=name) as context:
        usage = command.get_usage(context).removeprefix("Usage: ")
        options = [record for p in command.get_params(context)
                   if isinstance(p, click.Option) and "--help" not in p.opts and (record := p.get_help_record(context))]
    lines = [f"### {title or f'`{name}`'}", "", f"    {usage}", "", inspect.cleandoc(command.help or ""), ""]
    if options:
        lines += ["| option | meaning |", "| --- | --- |"]
        lines += [f"| `{flags}` | {meaning.replace('|', '&#124;')} |" for flags, meaning in options]
        lines.append("")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_: Any) -> str:
    if SETTINGS_MARK in markdown:
        markdown = markdown.replace(SETTINGS_MARK, settings_table())
    if COMMANDS_MARK in markdown:
        markdown = markdown.replace(COMMANDS_MARK, commands_reference())
    return markdown
