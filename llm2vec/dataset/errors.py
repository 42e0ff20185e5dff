"""Errors raised while loading training data.

Every problem with the input data is reported with one of these exceptions instead of being
skipped: a silently dropped file or line changes the training mixture without anyone noticing.
"""

from __future__ import annotations


class DatasetError(ValueError):
    """Invalid training data or dataset configuration (the message names the file and line)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data directory or file does not exist (the message says where the data comes from)."""
