"""Errors that rainset raises for bad files, environments and review files.

Wrong arguments to library functions raise ``ValueError``; problems with what is on disk (or
missing from the machine) raise a :class:`RainsetError` subclass whose message names the file
and says what to do. The command line turns these into one-line messages with exit code 1.
"""

from __future__ import annotations


class RainsetError(Exception):
    """Base class of every error rainset reports to a user as a one-line message."""


class InputError(RainsetError):
    """An input file or folder is missing, unreadable, empty, truncated or inconsistent."""


class FormatError(RainsetError):
    """A dataset on disk does not follow the rainset format."""


class ReviewFileError(RainsetError):
    """A review decisions file is malformed or disagrees with the run."""


class ParameterError(ValueError):
    """A library argument has a value the function cannot use.

    ``param`` names the parameter as the library spells it (``"max_shift"``); the command line
    maps it to its option (``--max-shift``) and prints one line. Subclassing ``ValueError`` keeps
    the usual Python contract for wrong arguments.
    """

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message

    def __str__(self) -> str:
        return f"{self.param}: {self.message}"


class EmptyResultError(RainsetError):
    """A run finished without producing a single sample; the message says why."""
