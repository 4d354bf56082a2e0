"""Every user-facing failure of faceid, each with a one-line message and its own exit code.

The CLI maps these once (``cli.py``); library callers catch :class:`FaceIDError` or a
subclass. Exit codes are part of the public contract: scripts around a door controller branch
on them, so a code is never reused for a different failure.
"""

from __future__ import annotations

from pathlib import Path


class FaceIDError(Exception):
    """Base class: ``str(err)`` is the one-line message, ``err.exit_code`` the process status."""

    exit_code: int = 4  # 0 and 1 are compare's same/different answers

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(FaceIDError):
    """The command line asks for something that cannot be done as given (the same status
    as a bad option: 2)."""

    exit_code = 2


class InvalidName(UsageError):
    """A person's name or external id that cannot be stored: empty, too long, or holding
    control characters (usage, exit 2: nothing was written)."""


class Cancelled(FaceIDError):
    """The operator answered no to a confirmation."""

    exit_code = 5


class InputError(FaceIDError):
    """A file or argument the user gave cannot be used (base for image and list errors)."""

    exit_code = 3


class FileMissing(InputError):
    exit_code = 10


class NotAFile(InputError):
    """A directory (or device) was given where an image file was expected."""

    exit_code = 11


class EmptyFile(InputError):
    exit_code = 12


class NotAnImage(InputError):
    """The bytes are not an image format we can decode (a text file named .jpg, say)."""

    exit_code = 13


class CorruptImage(InputError):
    """The header says image, but the pixel data is truncated or broken."""

    exit_code = 14


class ImageTooLarge(InputError):
    """Refused before decoding: the header declares more pixels than the configured limit."""

    exit_code = 15


class FileTooLarge(InputError):
    """A list, model or secret file is larger than anything faceid would read from it."""

    exit_code = 16


class WriteFailed(InputError):
    """A result, index or settings file cannot be written where it was asked for."""

    exit_code = 17


class FaceError(FaceIDError):
    """The image decoded, but it does not hold the one usable face the operation needs."""

    exit_code = 20


class NoFace(FaceError):
    exit_code = 21


class MultipleFaces(FaceError):
    exit_code = 22


class FaceTooSmall(FaceError):
    exit_code = 23


class LowQuality(FaceError):
    """The face is found but too blurred (or otherwise poor) to enrol as a template."""

    exit_code = 24


class DuplicateFace(FaceError):
    """A photo to enrol already matches another enrolled person (the same person twice,
    or a mislabelled photo); ``--allow-duplicate`` stores it anyway."""

    exit_code = 25


class ModelError(FaceIDError):
    """A model file or its weights are missing, unreadable, or not what the metadata says."""

    exit_code = 30


class PairsFileError(InputError):
    """A pair list (CSV or LFW pairs.txt) is malformed as a whole (bad rows are per-row)."""

    exit_code = 40


class DatasetError(InputError):
    """A dataset folder does not have the expected layout (LFW root without pairs.txt, say)."""

    exit_code = 41


class SourceError(InputError):
    """A camera, stream or video file cannot be opened or yields no frames."""

    exit_code = 42


class StoreError(FaceIDError):
    """The enrolment database cannot be used (base class; the URL is in the message)."""

    exit_code = 50


class DatabaseLocked(StoreError):
    """Another process held the database past the busy timeout."""

    exit_code = 51


class SchemaTooNew(StoreError):
    """The database was migrated by a newer faceid; this version must not write to it."""

    exit_code = 52


class GalleryMissing(StoreError):
    """No database at the given home or URL, and the command only reads one: a mistyped
    ``--home`` must not look like an empty gallery that answers "unknown"."""

    exit_code = 57


class AuditBroken(StoreError):
    """The audit trail's hash chain does not verify: a row was edited, inserted or
    deleted (the message names the first one)."""

    exit_code = 58


class DatabaseReset(StoreError):
    """The database holds no templates while the index beside it says it held some: the
    database file was deleted, truncated or swapped. Nothing is re-created over it."""

    exit_code = 59


class UnknownPerson(FaceIDError):
    exit_code = 53


class UnknownKey(FaceIDError):
    """``faceid keys revoke`` names no key of this gallery."""

    exit_code = 60


class AmbiguousPerson(FaceIDError):
    """A name matches several people; the message lists their ids."""

    exit_code = 54


class DuplicatePerson(FaceIDError):
    """A new person would repeat a name (or external id) without distinct external ids."""

    exit_code = 55


class ModelMismatch(FaceIDError):
    """The gallery's templates were made by another model (or view preset) than the one
    loaded: distances between them mean nothing, so the operation is refused."""

    exit_code = 56


def describe(path: str | Path, reason: str) -> str:
    """Format the one-line message every image error uses: the file first, then why."""
    return f"{path}: {reason}"


class TrainingDataError(InputError):
    """A training data folder cannot be trained on as a whole (empty, no identity with two
    usable images, a people list naming nobody in it); single bad images are skipped and
    counted, never raised."""

    exit_code = 80


class CheckpointError(FaceIDError):
    """A training checkpoint is missing, unreadable, or from another architecture or
    configuration than the run that tries to resume from it."""

    exit_code = 81


class LivenessModelError(FaceIDError):
    """A liveness (presentation-attack) model file or its weights are missing, unreadable,
    or not what the file says."""

    exit_code = 90


class LivenessDataError(InputError):
    """The live or attack footage given to ``calibrate-liveness`` holds no usable face."""

    exit_code = 91
