"""Errors and warnings that volumedr raises on purpose.

Every error a user can cause is a :class:`VolumedrError` whose message is one
clear line naming the problem; the command line prints it and exits non-zero.
"""


class VolumedrError(Exception):
    """A problem with the user's input, files or parameters (one-line message)."""


class GeometryError(VolumedrError, ValueError):
    """An impossible or invalid acquisition geometry."""


class ParameterError(VolumedrError, ValueError):
    """An invalid simulation or reconstruction parameter."""


class StudyFileError(VolumedrError):
    """A study file that cannot be read or written."""


class CaseError(VolumedrError):
    """A bundled case definition that cannot be loaded."""


class MemoryBudgetError(VolumedrError, MemoryError):
    """A request that would not fit in memory; refused before allocating."""


class Cancelled(VolumedrError):
    """Long work stopped at the user's request."""


class VolumedrWarning(UserWarning):
    """Something allowed but outside normal clinical practice."""


class PacsError(VolumedrError):
    """A PACS that cannot be reached, refuses the association or an operation."""
