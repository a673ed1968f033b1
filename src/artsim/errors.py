"""Exceptions that carry a message meant for the user (the CLI prints them on one line)."""


class ArtsimError(Exception):
    """A user-facing error: bad input, missing weights, a mismatched catalog."""


class ImageLoadError(ArtsimError):
    """An image could not be read; the message names the file and the reason."""


class ModelUnavailableError(ArtsimError):
    """Model weights are missing and cannot be fetched (offline)."""


class CatalogError(ArtsimError):
    """The catalog is missing, incompatible or damaged."""


class SourceError(ArtsimError):
    """A source (folder, CSV, NGA dump) is missing or malformed."""
