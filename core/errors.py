"""Errors a user can act on. Every message says what was found, what was expected, and what to do."""

from __future__ import annotations


class HeadRoomError(Exception):
    """Base class: the message is meant for the user, as it is."""


class ModelLoadError(HeadRoomError):
    pass


class CheckpointNotFoundError(ModelLoadError):
    pass


class CorruptCheckpointError(ModelLoadError):
    pass


class UnknownArchitectureError(ModelLoadError):
    pass


class UnetOnlyCheckpointError(ModelLoadError):
    pass


class PickleRefusedError(ModelLoadError):
    pass


class ProfileFileError(HeadRoomError):
    pass


class FragmentError(HeadRoomError):
    pass


class BaseModelMismatchError(FragmentError):
    pass


class CancelledError(HeadRoomError):
    """A long operation stopped because its cancel token was set."""
