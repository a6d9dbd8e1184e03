"""The project's exception tree, so callers can catch by category.

SeqrecError                (model/errors.py)
 ├── CheckpointError       a checkpoint is unreadable, corrupt or incompatible
 ├── DataError             a dataset file is missing or malformed
 ├── BrokerError           a Kafka broker could not be started, reached or stopped
 ├── SettingsError         a worker setting cannot work (exit code 2, like a usage error)
 └── SchemaError           an event broke its JSON Schema contract
"""

from model.errors import CheckpointError, DataError, SeqrecError


class BrokerError(SeqrecError):
    pass


class SchemaError(SeqrecError):
    pass


class SettingsError(SeqrecError):
    pass


__all__ = ["BrokerError", "CheckpointError", "DataError", "SchemaError", "SeqrecError", "SettingsError"]
