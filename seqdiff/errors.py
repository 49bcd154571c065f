"""Errors the CLI reports as one line (no traceback unless ``--debug``)."""


class SeqdiffError(Exception):
    """Base class: a user-facing problem with a clear message."""


class ConfigError(SeqdiffError, ValueError):
    """A configuration that cannot be built."""


class CheckpointError(SeqdiffError):
    """A checkpoint that is missing, corrupt, or does not match the config."""


class DataError(SeqdiffError, ValueError):
    """Input data that is malformed; the message names the file and record/line."""


class TrainingError(SeqdiffError):
    """Training stopped (e.g. a non-finite loss); the message says what is intact."""
