"""Exceptions the engine raises; each message is one line an artist can act on."""


class KinemoError(Exception):
    """Base of every error the engine reports to a user."""


class InvalidRequest(KinemoError, ValueError):
    """A generation request, or one of its inputs, is out of range or unusable."""


class ImageError(InvalidRequest):
    """A first-frame picture is missing, empty, truncated or not a picture."""


class ModelLoadError(KinemoError):
    """A model is missing, incomplete or unreadable."""


class Cancelled(KinemoError):
    """The run was stopped on request."""


class OutOfMemory(KinemoError):
    """The run did not fit in memory, even with the heavier policy it was retried with."""
