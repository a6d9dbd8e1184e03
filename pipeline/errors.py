"""The project's exception tree, so callers can catch by category.

SeqrecError                (model/errors.py)
 ├── CheckpointError       a checkpoint is unreadable, corrupt or incompatible
 ├── DataError             a dataset file is missing or malformed
 ├── BrokerError           a Kafka broker could not be started, reached or stopped
 └── ConfigError           a setting is invalid or cannot work (exit code 2, like a usage error)

A click that breaks its contract is not an exception: pipeline/serving/source.py returns a Rejection and the
worker dead-letters it.
"""

from seqrec.model.errors import CheckpointError, DataError, SeqrecError


class BrokerError(SeqrecError):
    pass


class ConfigError(SeqrecError):
    pass


__all__ = ["BrokerError", "CheckpointError", "ConfigError", "DataError", "SeqrecError"]
