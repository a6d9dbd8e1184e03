"""Command-line options made from `Settings`: the one source of every setting's name, default,
description and environment variable. An option that sets a setting is a `SettingOption`; it has
no default and no environment variable of its own (not given = the environment, then the
setting's default), and the command gets a built `Settings` through `pass_settings`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import click
from pydantic import SecretStr

from seqrec.pipeline.settings import Settings, env_name, leaf_fields, load_settings

# From the environment only: a command line is visible to every user of the host (`ps`).
ENV_ONLY = ("kafka", "security")


class SettingOption(click.Option):
    """An option that sets the setting at `setting` ("kafka.bootstrap_servers")."""

    def __init__(self, param_decls: list[str], *, setting: str, **attrs: Any) -> None:
        path = tuple(setting.split("."))
        field = leaf_fields().get(path)
        if field is None:
            raise ValueError(f"{'/'.join(param_decls)}: no setting {setting!r} in pipeline/settings.py")
        if path[:len(ENV_ONLY)] == ENV_ONLY or field.annotation in (SecretStr, SecretStr | None):
            raise ValueError(f"{'/'.join(param_decls)}: {setting} is set from the environment only")
        if "default" in attrs or "envvar" in attrs:
            raise ValueError(f"{'/'.join(param_decls)}: the default and the variable are the setting's")
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else str(default).lower() if isinstance(default, bool) else default
        attrs["help"] = f"{attrs.get('help') or field.description} [env {env_name(path)}; default: {shown}]"
        super().__init__(param_decls, default=None, **attrs)
        self.setting = path


def setting_option(*param_decls: str, setting: str, **attrs: Any) -> Callable:
    """`click.option` for a setting: the flags (and a click type) are the command's, the rest the setting's."""
    return click.option(*param_decls, cls=SettingOption, setting=setting, **attrs)


def settings_from_options(command: click.Command, given: Mapping[str, Any]) -> Settings:
    """Settings from the environment, overridden by the values of `command`'s setting options that
    were given (None: not given)."""
    overrides: dict[str, Any] = {}
    for param in command.params:
        if isinstance(param, SettingOption) and given.get(param.name) is not None:
            *groups, field = param.setting
            target = overrides
            for group in groups:
                target = target.setdefault(group, {})
            target[field] = given[param.name]
    return load_settings(**overrides)


def pass_settings(command: Callable[..., Any]) -> Callable[..., Any]:
    """Call `command` with `settings=` built from the environment and its setting options, and
    with its other options as they are (the setting options' raw values are not passed)."""

    @functools.wraps(command)
    def run(**params: Any) -> Any:
        this = click.get_current_context().command
        names = {p.name for p in this.params if isinstance(p, SettingOption)}
        return command(settings=settings_from_options(this, params),
                       **{k: v for k, v in params.items() if k not in names})

    return run


def all_commands(group: click.Group, path: tuple[str, ...] = ()) -> dict[str, click.Command]:
    """Every sub-command of `group` by its path ("worker", "models list"...)."""
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        found[" ".join(path + (name,))] = command
        if isinstance(command, click.Group):
            found.update(all_commands(command, path + (name,)))
    return found
