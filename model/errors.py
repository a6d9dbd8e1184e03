"""Errors of the model layer. The pipeline adds its own under the same base (pipeline/errors.py).

SeqrecError
 ├── CheckpointError    a checkpoint is unreadable, corrupt or incompatible
 └── DataError          a dataset file is missing or malformed
"""


class SeqrecError(Exception):
    """Base of every error this project raises on purpose."""


class CheckpointError(SeqrecError):
    pass


class DataError(SeqrecError):
    pass
