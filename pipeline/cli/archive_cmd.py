"""`seqrec archive`: keep every valid click in a Parquet archive at a URL (pipeline.storage.archive)."""

from __future__ import annotations

import signal
import threading

import click

from seqrec.pipeline.cli.options import pass_settings, setting_option
from seqrec.pipeline.cli.replay_cmd import bootstrap_option
from seqrec.pipeline.settings import Settings
from seqrec.pipeline.storage.archive import ClickArchiver
from seqrec.pipeline.storage.location import redact


@click.command()
@setting_option("--url", setting="archive.url")
@setting_option("--group", setting="archive.group_id")
@setting_option("--max-file-clicks", setting="archive.max_file_clicks", type=click.IntRange(min=1))
@setting_option("--max-file-seconds", setting="archive.max_file_seconds", type=click.FloatRange(min=0.1))
@setting_option("--topic", setting="kafka.clicks_topic")
@bootstrap_option
@pass_settings
def archive(settings: Settings) -> None:
    """Archive the clicks topic into a Parquet dataset partitioned by event date (date=YYYY-MM-DD/).

    Run as many as you like: they share the topic's partitions as one consumer group. Offsets are
    committed only after a file is written, and a restart never writes a click twice. Stops on
    Ctrl-C or SIGTERM after writing what it holds. Retrain from it with `seqrec retrain --archive`."""
    archiver = ClickArchiver(settings.archive, settings.kafka)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"archiving {settings.kafka.clicks_topic} from {settings.kafka.bootstrap_servers} into "
               f"{redact(settings.archive.url or '')} (group {settings.archive.group_id}); Ctrl-C stops", err=True)
    stats = archiver.run(stop)
    click.echo(f"archive: {stats.archived:,} clicks in {stats.files:,} files, {stats.invalid:,} invalid skipped")
