"""The event contracts, as versioned JSON Schema files shipped with the package.

    click.v1.json           a click, the worker's input (topic keyed by user_id)
    recommendation.v1.json  the answer to one click
    dead_letter.v1.json     a click the worker could not serve, with the reason

The JSON files are the contract (language-neutral; producers in other languages read them).
`validator(name)` compiles a schema once with fastjsonschema; the compiled function raises
`fastjsonschema.JsonSchemaValueException` on the first violation.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

import fastjsonschema

NAMES = ("click", "recommendation", "dead_letter")
VERSION = 1


def load_schema(name: str, version: int = VERSION) -> dict[str, Any]:
    """The parsed JSON Schema `<name>.v<version>.json`; ValueError for an unknown name."""
    if name not in NAMES:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(NAMES)}")
    text = resources.files(__name__).joinpath(f"{name}.v{version}.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=None)
def validator(name: str, version: int = VERSION) -> Callable[[Any], Any]:
    """The compiled validator for a schema (compiled once per process)."""
    return fastjsonschema.compile(load_schema(name, version))


__all__ = ["NAMES", "VERSION", "load_schema", "validator"]
