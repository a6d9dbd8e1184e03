"""A client of a worker's request API (`GET /users/{user_id}/recommendations?k=N`,
pipeline/serving/request_api.py), with the standard library only.

    recommend("u-17", k=5, url="http://127.0.0.1:6066", token=settings.serving.bearer_token())
    # -> {"user_id": "u-17", "items": [{"item_id": "sku-12", "score": 8.41}, ...],
    #     "model_version": "...", "source": "request", "fallback": None, ...}

Any worker of the group answers: one that does not own the user forwards to the one that does.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from seqrec.model.errors import SeqrecError

DEFAULT_URL = "http://127.0.0.1:6066"


class RequestApiError(SeqrecError):
    """The API refused (`status` 400, 401, 503...) or did not answer (`status` None)."""

    def __init__(self, message: str, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


def recommend(user_id: str, *, k: int | None = None, url: str = DEFAULT_URL, token: str | None = None,
              timeout_s: float = 5.0) -> dict[str, Any]:
    """The worker's answer for `user_id` (k: the worker's top_k when None); RequestApiError with
    the API's one-line reason otherwise."""
    address = f"{url.rstrip('/')}/users/{urllib.parse.quote(user_id, safe='')}/recommendations"
    if k is not None:
        address += f"?k={k}"
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(address, headers=headers), timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        retry = exc.headers.get("Retry-After")
        raise RequestApiError(f"{exc.code}: {_reason(exc.read()) or exc.reason}", exc.code,
                              float(retry) if retry else None) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RequestApiError(f"no answer from {url}: {reason}") from None


def _reason(body: bytes) -> str | None:
    """The API's `{"error": line}`, or None when the body is not one (a proxy's page...)."""
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return None


__all__ = ["DEFAULT_URL", "RequestApiError", "recommend"]
