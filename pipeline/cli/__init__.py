"""The `seqrec` command. Each sub-command lives in its own module and only parses, calls library
code and prints; this module wires them together and turns usage errors into one line."""

from __future__ import annotations

import logging
import sys

import click

from seqrec.pipeline.errors import SeqrecError, ConfigError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seqrec", prog_name="seqrec", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """seqrec: a real-time sequential recommender on Kafka.

    Click events flow into Kafka, a Faust worker keeps each user's history in RocksDB and answers
    every click with next-item recommendations from a SASRec-style model (softmax, V-GenAtt or
    D-GenAtt attention). Run `seqrec COMMAND --help` for each command.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register_commands() -> None:
    from seqrec.pipeline.cli import archive_cmd, demo_cmd, kafka_cmd, store_cmd, replay_cmd, retrain_cmd
    from seqrec.pipeline.cli import train_cmd
    from seqrec.pipeline.cli import worker_cmd
    from seqrec.pipeline.cli import recommend_cmd

    cli.add_command(archive_cmd.archive)
    cli.add_command(demo_cmd.demo)
    cli.add_command(kafka_cmd.kafka)
    cli.add_command(store_cmd.models)
    cli.add_command(replay_cmd.export)
    cli.add_command(replay_cmd.replay)
    cli.add_command(replay_cmd.evaluate_replay)
    cli.add_command(retrain_cmd.retrain)
    cli.add_command(train_cmd.train)
    cli.add_command(train_cmd.evaluate)
    cli.add_command(worker_cmd.worker)
    cli.add_command(recommend_cmd.recommend)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: usage errors and known failures become one line on stderr, never a traceback."""
    try:
        cli.main(args=argv, prog_name="seqrec", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: show its help
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        return 2
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"seqrec: error: {exc.format_message()}{hint}", err=True)
        return 2
    except click.Abort:
        click.echo("seqrec: aborted", err=True)
        return 130
    except ConfigError as exc:  # a setting that cannot work is a usage error
        click.echo(f"seqrec: error: {exc}", err=True)
        return 2
    except SeqrecError as exc:
        click.echo(f"seqrec: error: {exc}", err=True)
        return 1
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
