"""The exceptions the core raises, each with a message a biologist can act on.

Every message names the file (or folder), says what is wrong and what to do, in the project's own
words. biom3d's exception types and wording (``AssertionError``, "List of sizes for median
computation is empty") belong to the seed API only: :mod:`napari_autoconfig.auto_config` translates
these errors there, so the command line and the widget never show biom3d's sentences.
"""

from __future__ import annotations


class AutoconfigError(Exception):
    """Base class of every error napari-autoconfig raises on purpose."""


class DatasetError(AutoconfigError):
    """A folder of images (or masks) cannot be fingerprinted as it is."""


class FolderNotFoundError(DatasetError):
    """The folder given does not exist or is not a folder."""


class EmptyDatasetError(DatasetError):
    """The folder holds no readable image."""


class MixedDimensionsError(DatasetError):
    """Images with different numbers of dimensions (or channels) in one collection."""


class UnpairedFilesError(DatasetError):
    """Images without a mask or masks without an image, listed by name."""


class MaskMismatchError(DatasetError):
    """A mask whose shape differs from its image's."""


class NonIntegerMaskError(DatasetError):
    """A mask holding non-integer values (not a label image)."""


class LimitsError(AutoconfigError, AssertionError):
    """Planning limits no plan can come from (e.g. ``max_dims`` too small regarding ``max_pool``).

    An ``AssertionError`` too, as biom3d asserts on the same limits:
    :class:`~napari_autoconfig.planners.biom3d.Limits` raises it when built, before any folder is
    read, and its messages are the project's own.
    """


class ImageReadError(AutoconfigError):
    """A file with an image extension that cannot be read as an image.

    Covers garbage content, zero-byte files, truncated files (shorter than their header says) and
    zero-size images.
    """


class SeedError(AutoconfigError, ValueError):
    """A seed numpy's random generator refuses (negative, not a whole number).

    A ``ValueError`` too, as numpy raises for a negative seed; the seed API re-raises numpy's own
    exception (biom3d's behaviour), the command line refuses such a seed when parsing.
    """


class ConfigError(AutoconfigError):
    """A biom3d config file cannot be written or updated (missing, not parseable, not writable)."""


class Cancelled(AutoconfigError):
    """The user cancelled a fingerprinting run; nothing from it is kept."""
