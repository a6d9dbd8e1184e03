"""`seqrec models ...`: look into the model store, publish, promote and roll back versions."""

from __future__ import annotations

import json
from pathlib import Path

import click

from seqrec.pipeline.cli.options import pass_settings, setting_option
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.settings import Settings
from seqrec.pipeline.storage.location import redact

# The workers' own setting: `models` and `retrain` manage the store the workers follow.
store_option = setting_option("--store", setting="serving.model_store")
force_option = click.option(
    "--force-incompatible", is_flag=True,
    help="Serve it even if its architecture differs from the serving version's: running workers keep "
         "the old model until restarted, workers started later serve the new one.")


@click.group()
def models() -> None:
    """Inspect and manage the versioned model store the workers serve from."""


@models.command("list")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_settings
def list_versions(settings: Settings, as_json: bool) -> None:
    """List stored versions, oldest first; `*` marks the serving one, `!` an unreadable file."""
    store = ModelStore(settings.serving.store_url())
    latest = store.latest()
    rows = store.versions()
    if as_json:
        click.echo(json.dumps([{"version": r.version, "serving": r.version == latest, "attention": r.attention,
                                "n_items": r.n_items, "created_at": r.created_at, "metrics": r.metrics,
                                "valid_ndcg@10": r.quality, "error": r.error} for r in rows]))
        return
    if not rows:
        click.echo(f"no versions in {redact(store.url)}")
        return
    for r in rows:
        mark = "*" if r.version == latest else " "
        if r.error:
            click.echo(f"{mark}!{r.version}  unreadable: {r.error}")
            continue
        quality = f"  valid NDCG@10 {r.quality:.4f}" if r.quality is not None else ""
        click.echo(f"{mark} {r.version}  {r.attention:8s} {r.n_items:>7d} items{quality}")


@models.command()
@store_option
@click.argument("version")
@pass_settings
def show(settings: Settings, version: str) -> None:
    """Show one version's configuration summary and metrics."""
    info = ModelStore(settings.serving.store_url()).info(version)
    click.echo(json.dumps({"version": info.version, "created_at": info.created_at, "attention": info.attention,
                           "n_items": info.n_items, "metrics": info.metrics, "url": info.url}, indent=2))


@models.command()
@store_option
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-promote", is_flag=True, help="Store it without making it the serving version.")
@force_option
@pass_settings
def publish(settings: Settings, checkpoint: Path, no_promote: bool, force_incompatible: bool) -> None:
    """Copy a checkpoint into the store and (by default) make it the serving version.

    Refused when its architecture differs from the serving version's (running workers would
    refuse it): see --force-incompatible."""
    store = ModelStore(settings.serving.store_url())
    version = store.publish(checkpoint, promote=not no_promote, force_incompatible=force_incompatible)
    click.echo(version)


@models.command()
@store_option
@click.argument("version")
@force_option
@pass_settings
def promote(settings: Settings, version: str, force_incompatible: bool) -> None:
    """Make a stored version the serving one; running workers hot-swap to it.

    Refused when its architecture differs from the serving version's: see --force-incompatible."""
    ModelStore(settings.serving.store_url()).promote(version, force_incompatible=force_incompatible)
    click.echo(f"serving {version}")


@models.command()
@store_option
@pass_settings
def rollback(settings: Settings) -> None:
    """Serve the previously promoted version again."""
    click.echo(f"serving {ModelStore(settings.serving.store_url()).rollback()}")
