"""One exception type for everything a user can get wrong.

The CLI turns a :class:`CsalicError` into a single ``csalic: error: ...`` line and
a non-zero exit, so library code raises it with a message that says what was
wrong and what to do, instead of letting a traceback reach the user.
"""


class CsalicError(Exception):
    """A user-facing error: bad input, missing file, incompatible artefact."""


class BitstreamError(CsalicError):
    """A ``.csa`` file that cannot be decoded: truncated, corrupted or foreign."""


class CheckpointError(CsalicError):
    """A checkpoint that cannot be loaded for the requested use."""


class UnreadableImageError(CsalicError):
    """An image file that cannot be decoded (truncated, empty, not an image, too large).

    Commands that code one image stop on it; dataset-wide steps (evaluation,
    training crops) skip the image with a named warning and count it.
    """
