"""Errors of the model layer. The pipeline adds its own under the same base (pipeline/errors.py).

SeqrecError
 ├── CheckpointError    a checkpoint is unreadable, corrupt or incompatible
 ├── DataError          a dataset file is missing or malformed
 └── DistributedError   a process of a distributed training failed (model.distributed)
"""


class SeqrecError(Exception):
    """Base of every error this project raises on purpose."""


class CheckpointError(SeqrecError):
    pass


class DataError(SeqrecError):
    pass


class DistributedError(SeqrecError):
    pass
