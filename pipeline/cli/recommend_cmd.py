"""`seqrec recommend USER`: ask a worker's request API for a user's list and print it."""

from __future__ import annotations

import json

import click

from seqrec.pipeline.cli.options import pass_settings
from seqrec.pipeline.client import DEFAULT_URL
from seqrec.pipeline.settings import Settings


@click.command("recommend")
@click.argument("user_id")
@click.option("--k", type=click.IntRange(min=1), default=None, help="Items to ask for [default: the worker's top_k].")
@click.option("--url", "worker_url", default=DEFAULT_URL, show_default=True, help="Any worker's web address (it forwards to the owner).")
@click.option("--json", "as_json", is_flag=True, help="Print the worker's JSON answer as it came.")
@pass_settings
def recommend(settings: Settings, user_id: str, k: int | None, worker_url: str, as_json: bool) -> None:
    """Print the recommendations a worker gives USER_ID now, best first.

    The worker must serve the request API (`seqrec worker --recommend-api`). The token, when the
    workers ask for one, comes from SEQREC_SERVING__API_TOKEN or SEQREC_SERVING__API_TOKEN_FILE,
    never from an option (a command line is visible to every user of the host)."""
    from seqrec.pipeline.client import recommend as ask

    answer = ask(user_id, k=k, url=worker_url, token=settings.serving.bearer_token())
    if as_json:
        click.echo(json.dumps(answer))
        return
    fallback = " (no history: most popular items)" if answer.get("fallback") else ""
    click.echo(f"{answer['user_id']}: model {answer['model_version']}{fallback}")
    for rank, item in enumerate(answer["items"], 1):
        click.echo(f"{rank:3d}. {item['item_id']}  {item['score']:.4f}")
