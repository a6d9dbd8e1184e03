"""Generate docs/configuration.md from the code that reads the configuration.

    python deploy/gen_config_docs.py          # rewrite docs/configuration.md
    python deploy/gen_config_docs.py --check  # exit 1 when the committed file is stale

Three sources, all read from the code, none written by hand:
- `pipeline.settings.Settings`: every field, nested groups included, with its environment
  variable (prefix ``SEQREC_``, ``__`` between group and field), type, default, bounds and the
  description (a pydantic ``Field(description=...)`` or else the source comment on or above it);
- the `seqrec worker` options that override a setting (``_OVERRIDES`` in pipeline/cli/worker_cmd.py);
- the click options of the other commands that declare an ``envvar`` and the variables the
  pipeline reads with ``os.environ`` directly.

The command-line modules are read with `ast`, not imported: importing them loads torch, which
would make this script (and the test that runs it) take seconds.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import io
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "configuration.md"
CLI_DIR = ROOT / "pipeline" / "cli"
PIPELINE_DIR = ROOT / "pipeline"

if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from pydantic import BaseModel  # noqa: E402

from pipeline.settings import Settings  # noqa: E402


# ---- Settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingRow:
    path: tuple[str, ...]  # ("kafka", "partitions")
    env: str  # SEQREC_KAFKA__PARTITIONS
    type: str
    default: Any
    bounds: str
    description: str


def _field_comments(source_file: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """class name -> field name -> (type as written, comment): the comment on the field's line,
    after the comment lines directly above it."""
    text = source_file.read_text(encoding="utf-8")
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = text.splitlines()
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ClassDef):
            continue
        fields: dict[str, tuple[str, str]] = {}
        for stmt in node.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            above: list[str] = []
            line = stmt.lineno - 1
            while line >= 1 and lines[line - 1].strip().startswith("#"):
                above.insert(0, comments[line])
                line -= 1
            trailing = [comments[n] for n in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1) if n in comments]
            fields[stmt.target.id] = (ast.unparse(stmt.annotation), " ".join(above + trailing))
        out[node.name] = fields
    return out


def _bounds(metadata: list[Any]) -> str:
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for item in metadata:
        for attr, symbol in symbols.items():
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def settings_rows(model: type[BaseModel] = Settings) -> list[SettingRow]:
    """Every leaf field of `model`, nested groups flattened, in declaration order."""
    prefix = str(model.model_config.get("env_prefix", "")).upper()
    delimiter = str(model.model_config.get("env_nested_delimiter") or "__")
    sources: dict[Path, dict[str, dict[str, tuple[str, str]]]] = {}

    def walk(cls: type[BaseModel], path: tuple[str, ...]) -> list[SettingRow]:
        source = Path(inspect.getsourcefile(cls) or "")
        if source not in sources:
            sources[source] = _field_comments(source)
        written = sources[source].get(cls.__name__, {})
        rows: list[SettingRow] = []
        for name, field in cls.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                rows.extend(walk(annotation, path + (name,)))
                continue
            type_text, comment = written.get(name, (getattr(annotation, "__name__", str(annotation)), ""))
            rows.append(SettingRow(
                path=path + (name,),
                env=prefix + delimiter.join(path + (name,)).upper(),
                type=type_text,
                default=field.get_default(call_default_factory=True),
                bounds=_bounds(list(field.metadata)),
                description=field.description or comment,
            ))
        return rows

    return walk(model, ())


def settings_env_vars() -> dict[str, tuple[str, ...]]:
    """Environment variable -> settings field path, for every setting."""
    return {row.env: row.path for row in settings_rows()}


# ---- the command line, read with ast -----------------------------------------------------------


def _is_click_option(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "option"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "click")


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _literal(node: ast.expr | None) -> Any:
    """A constant's value; `Path("models")` and the like give their one constant argument."""
    if node is None:
        return None
    if isinstance(node, ast.Call) and len(node.args) == 1 and isinstance(node.args[0], ast.Constant):
        node = node.args[0]
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def _command_name(func: ast.FunctionDef) -> str | None:
    """`seqrec` sub-command path of a click command function: "worker", "models list"..."""
    for deco in func.decorator_list:
        if isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr == "command":
            name = deco.args[0].value if deco.args and isinstance(deco.args[0], ast.Constant) else None
            name = name or func.name.replace("_", "-")
            group = deco.func.value
            if isinstance(group, ast.Name) and group.id != "click":
                return f"{group.id} {name}"
            return name
    return None


@dataclass(frozen=True)
class CliOption:
    flags: tuple[str, ...]  # ("--store",), ("--web", "--without-web")
    envvar: str | None
    default: Any
    help: str
    module: str  # where it is declared


def _option(call: ast.Call, module: Path) -> CliOption:
    flags = tuple(f for a in call.args if isinstance(a, ast.Constant) and str(a.value).startswith("-")
                  for f in str(a.value).split("/"))
    envvar = _literal(_kw(call, "envvar"))
    return CliOption(flags, envvar if isinstance(envvar, str) else None, _literal(_kw(call, "default")),
                     _literal(_kw(call, "help")) or "", module.relative_to(ROOT).as_posix())


def cli_options(cli_dir: Path = CLI_DIR) -> dict[str, list[CliOption]]:
    """`seqrec` sub-command ("worker", "models list"...) -> its click options, read with ast.
    Options bound to a module-level name (`store_option = click.option(...)`) or added by a
    module-level helper function used as a decorator count for every command decorated with
    that name, in whichever module of `cli_dir`."""
    modules = {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(cli_dir.glob("*.py"))}
    shared: dict[str, list[CliOption]] = {}
    for p, tree in modules.items():
        for n in tree.body:
            if isinstance(n, ast.Assign) and _is_click_option(n.value):
                shared.update({t.id: [_option(n.value, p)] for t in n.targets if isinstance(t, ast.Name)})
            elif isinstance(n, ast.FunctionDef) and _command_name(n) is None:  # a helper adding options
                calls = [c for c in ast.walk(n) if _is_click_option(c)]
                if calls:
                    shared[n.name] = [_option(c, p) for c in calls]
    commands: dict[str, list[CliOption]] = {}
    for path, tree in modules.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef) or (command := _command_name(node)) is None:
                continue
            options = commands.setdefault(command, [])
            for deco in node.decorator_list:
                if isinstance(deco, ast.Name) and deco.id in shared:
                    options.extend(shared[deco.id])
                elif _is_click_option(deco):
                    options.append(_option(deco, path))
    return commands


@dataclass(frozen=True)
class EnvOption:
    env: str
    flag: str
    default: Any
    help: str
    commands: tuple[str, ...]
    module: str


def cli_env_options(cli_dir: Path = CLI_DIR) -> list[EnvOption]:
    """Click options that declare an `envvar`, each with the commands that use it."""
    users: dict[CliOption, set[str]] = {}
    for command, options in cli_options(cli_dir).items():
        for option in options:
            if option.envvar:
                users.setdefault(option, set()).add(command)
    rows = [EnvOption(o.envvar, o.flags[0], o.default, o.help, tuple(sorted(c)), o.module)
            for o, c in users.items() if o.envvar]
    return sorted(rows, key=lambda r: (r.env, r.commands))


def cli_env_vars() -> set[str]:
    return {o.env for o in cli_env_options()}


def worker_overrides(cli_dir: Path = CLI_DIR) -> dict[tuple[str, ...], tuple[str, str]]:
    """Settings path -> (the `seqrec worker` option that overrides it, the option's help)."""
    tree = ast.parse((cli_dir / "worker_cmd.py").read_text(encoding="utf-8"))
    overrides: dict[str, tuple[str | None, str]] = {}
    flags: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "_OVERRIDES" for t in targets) and node.value is not None:
                overrides = ast.literal_eval(node.value)
        if isinstance(node, ast.FunctionDef) and _command_name(node) == "worker":
            for deco in node.decorator_list:
                if _is_click_option(deco):
                    flag = deco.args[0].value
                    name = flag.split("/")[0].lstrip("-").replace("-", "_")
                    flags[name] = (flag, _literal(_kw(deco, "help")) or "")
    return {((group,) if group else ()) + (field,): flags.get(option, (option, ""))
            for option, (group, field) in overrides.items()}


def _string_constants(tree: ast.Module) -> dict[str, str]:
    return {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
            for t in n.targets if isinstance(t, ast.Name)}


def direct_env_reads(pipeline_dir: Path = PIPELINE_DIR) -> dict[str, list[str]]:
    """Variables read with os.environ / os.getenv anywhere in the pipeline -> the modules. A
    variable named by a constant (also one imported from another pipeline module) is resolved."""
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(pipeline_dir.rglob("*.py"))}
    by_module = {".".join(p.relative_to(ROOT).with_suffix("").parts): _string_constants(t) for p, t in trees.items()}
    reads: dict[str, set[str]] = {}
    for path, tree in trees.items():
        constants = dict(_string_constants(tree))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module in by_module:
                for alias in node.names:
                    if alias.name in by_module[node.module]:
                        constants[alias.asname or alias.name] = by_module[node.module][alias.name]
        for node in ast.walk(tree):
            key: ast.expr | None = None
            if isinstance(node, ast.Call) and node.args and ast.unparse(node.func) in {"os.environ.get", "os.getenv"}:
                key = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                name = key.value
            elif isinstance(key, ast.Name) and key.id in constants:
                name = constants[key.id]
            else:
                continue
            reads.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    return {name: sorted(modules) for name, modules in sorted(reads.items())}


# ---- rendering ---------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: Any) -> str:
    if value is None:
        return "*(unset)*"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return f"`{value.as_posix()}`"
    return f"`{value}`"


GROUP_TITLES = {
    (): "Application",
}


def render() -> str:
    rows = settings_rows()
    overrides = worker_overrides()
    out = [
        "# Configuration",
        "",
        "<!-- Generated by deploy/gen_config_docs.py from pipeline/settings.py and pipeline/cli/: do not edit.",
        "     Regenerate with `python deploy/gen_config_docs.py`; tests/test_deploy.py fails when this file is stale. -->",
        "",
        "The streaming worker (`seqrec worker`) reads one `Settings` object (pipeline/settings.py). Every",
        f"field comes from the environment with the prefix `{Settings.model_config.get('env_prefix')}` and `__` "
        "between a group and its field.",
        "A `seqrec worker` option, where there is one, wins over the environment, and the environment wins",
        "over the default. Booleans take `true`/`false` (also `1`/`0`); leave an optional field unset to keep",
        "it empty. A description in italics is the worker option's help (the setting has no comment).",
        "",
    ]
    groups: dict[tuple[str, ...], list[SettingRow]] = {}
    for row in rows:
        groups.setdefault(row.path[:-1], []).append(row)
    for group, members in groups.items():
        title = GROUP_TITLES.get(group, f"`{'.'.join(group)}`")
        out += [f"## {title}", "",
                "| environment variable | type | default | bounds | `seqrec worker` option | description |",
                "|---|---|---|---|---|---|"]
        for r in members:
            flag, option_help = overrides.get(r.path, ("", ""))
            option = f"`{flag}`" if flag else ""
            out.append(f"| `{r.env}` | `{_cell(r.type)}` | {_cell(_value(r.default))} | {r.bounds} | {_cell(option)} "
                       f"| {_cell(r.description or (f'*{option_help}*' if option_help else ''))} |")
        out.append("")
    out += [
        "## Variables of the other commands",
        "",
        "These commands do not build `Settings`; their options read these variables when not given.",
        "",
        "| environment variable | option | commands | default | description |",
        "|---|---|---|---|---|",
    ]
    for o in cli_env_options():
        commands = ", ".join(f"`seqrec {c}`" for c in o.commands)
        out.append(f"| `{o.env}` | `{o.flag}` | {commands} | {_cell(_value(o.default))} | {_cell(o.help)} |")
    out += [
        "",
        "## Read directly from the environment",
        "",
        "| environment variable | read in |",
        "|---|---|",
    ]
    for name, modules in direct_env_reads().items():
        out.append(f"| `{name}` | {', '.join(f'`{m}`' for m in modules)} |")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python deploy/gen_config_docs.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
