"""nnU-Net v2's fingerprint as records: one case's, and the dataset's, with their JSON.

Frozen dataclasses only: what :mod:`.nnunet_case` makes of one case (:class:`NnUNetCaseRecord`,
with its :class:`ChannelDraws`), what :mod:`.nnunet_statistics` makes of a channel's draws
(:class:`ChannelIntensities`) and the dataset's fingerprint that :mod:`.nnunet_fingerprint`
merges and the planner (:mod:`.nnunet`) reads (:class:`NnUNetFingerprint`, which also reads
nnU-Net's own ``dataset_fingerprint.json``). Axis order: nnU-Net's reader order, (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .float32_sum import PartialSum
from .nnunet_io import reader_by_ending


@dataclass(frozen=True)
class ChannelDraws:
    """What one case contributes to one channel's statistics: its draws, summarised.

    Attributes
    ----------
    values, counts : numpy.ndarray
        The distinct drawn values (float32, ascending) and how often each was drawn; empty
        once :func:`.nnunet_fingerprint.fingerprint_nnunet` merged them into the dataset's
        tally.
    sum : PartialSum
        The draws' part of numpy's float32 sum of every case's draws (:mod:`.float32_sum`).
    """

    values: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    sum: PartialSum = field(repr=False)


@dataclass(frozen=True)
class NnUNetCaseRecord:
    """One case as nnU-Net's ``analyze_case`` sees it (reader axis order, (z, y, x)).

    Attributes
    ----------
    key : str
        The case id.
    shape : tuple of int
        Shape before cropping.
    bbox : tuple of (int, int)
        Half-open bounding box of the voxels non-zero in any channel (the whole image when none).
    spacing : tuple of float
        nnU-Net's spacing of the case.
    foreground : int
        Label voxels > 0 inside the box (the voxels drawn from).
    label_values : tuple of int
        The label's distinct values, ascending (to count classes in folders without a
        dataset.json: :func:`.nnunet_labels.plan_labels`); empty without a label, and for a
        raw dataset (its dataset.json names the labels).
    channels : tuple of ChannelDraws
        One per channel; empty when the case has no foreground.
    """

    key: str
    shape: tuple[int, ...]
    bbox: tuple[tuple[int, int], ...]
    spacing: tuple[float, ...]
    foreground: int
    label_values: tuple[int, ...]
    channels: tuple[ChannelDraws, ...] = field(default=(), repr=False)

    @property
    def label_max(self) -> int:
        """The largest label value (0 without a label)."""
        return max(self.label_values, default=0)

    @property
    def shape_after_crop(self) -> tuple[int, ...]:
        return tuple(hi - lo for lo, hi in self.bbox)

    @property
    def relative_size_after_cropping(self) -> float:
        return float(np.prod(self.shape_after_crop) / np.prod(self.shape))


@dataclass(frozen=True)
class ChannelIntensities:
    """nnU-Net's foreground intensity statistics of one channel (over the draws)."""

    mean: float
    median: float
    std: float
    min: float
    max: float
    percentile_99_5: float
    percentile_00_5: float

    def as_json(self) -> dict:
        return {
            "max": self.max,
            "mean": self.mean,
            "median": self.median,
            "min": self.min,
            "percentile_00_5": self.percentile_00_5,
            "percentile_99_5": self.percentile_99_5,
            "std": self.std,
        }


@dataclass(frozen=True)
class NnUNetFingerprint:
    """nnU-Net's ``dataset_fingerprint.json`` plus the dataset.json facts its planner reads.

    Attributes
    ----------
    dataset_name : str
        The dataset folder's name (``Dataset001_Cells``), or the images folder's.
    channel_names : tuple of str
        dataset.json's ``channel_names`` in channel order (they choose the normalisation).
    num_labels : int
        Entries of dataset.json's ``labels`` (background, classes, ignore...).
    num_training : int
        dataset.json's ``numTraining`` (trusted as written, as nnU-Net does).
    image_reader_writer : str
        The reader class nnU-Net would use for the file ending.
    spacings, shapes_after_crop : tuple of tuple
        Per case, nnU-Net's reader order ((z, y, x); 2D: (999 * max, y, x)).
    median_relative_size_after_cropping : float
    intensities : tuple of ChannelIntensities or None
        Per channel; None without labels (nnU-Net needs them).
    keys : tuple of str
        The case ids, in nnU-Net's order.
    notes : tuple of str
        Lines for the user about how the dataset was read (a spacing assumed, the labels'
        mapping), one line per matter, not per case.
    """

    dataset_name: str
    channel_names: tuple[str, ...]
    num_labels: int
    num_training: int
    image_reader_writer: str
    spacings: tuple[tuple[float, ...], ...]
    shapes_after_crop: tuple[tuple[int, ...], ...]
    median_relative_size_after_cropping: float
    intensities: tuple[ChannelIntensities, ...] | None
    keys: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def intensity_properties_json(self) -> dict:
        """``foreground_intensity_properties_per_channel`` as nnU-Net writes it."""
        if self.intensities is None:
            return {}
        return {str(i): c.as_json() for i, c in enumerate(self.intensities)}

    def as_json(self) -> dict:
        """The ``dataset_fingerprint.json`` nnU-Net writes (its keys; it sorts them)."""
        return {
            "foreground_intensity_properties_per_channel": self.intensity_properties_json(),
            "median_relative_size_after_cropping": self.median_relative_size_after_cropping,
            "shapes_after_crop": [list(s) for s in self.shapes_after_crop],
            "spacings": [list(s) for s in self.spacings],
        }

    @classmethod
    def from_json(
        cls, fingerprint: dict, dataset_json: dict, dataset_name: str = ""
    ) -> NnUNetFingerprint:
        """Read nnU-Net's own ``dataset_fingerprint.json`` and ``dataset.json`` (as dicts)."""
        channels = dataset_json.get("channel_names", dataset_json.get("modality", {}))
        props = fingerprint["foreground_intensity_properties_per_channel"]
        intensities = tuple(
            ChannelIntensities(**{k: float(v) for k, v in props[str(i)].items()})
            for i in range(len(channels))
        )
        ending = dataset_json.get("file_ending", ".nii.gz")
        # without a file to try, nnU-Net's registry gives the first class listing the ending
        reader = dataset_json.get("overwrite_image_reader_writer", "None")
        return cls(
            dataset_name=dataset_name,
            channel_names=tuple(str(channels[k]) for k in sorted(channels, key=int)),
            num_labels=len(dataset_json["labels"]),
            num_training=int(dataset_json["numTraining"]),
            image_reader_writer=reader if reader != "None" else reader_by_ending(ending),
            spacings=tuple(tuple(_number(v) for v in s) for s in fingerprint["spacings"]),
            shapes_after_crop=tuple(
                tuple(int(v) for v in s) for s in fingerprint["shapes_after_crop"]
            ),
            median_relative_size_after_cropping=float(
                fingerprint["median_relative_size_after_cropping"]
            ),
            intensities=intensities,
        )


def _number(value: float | int) -> float | int:
    # nnU-Net's TIFF reader passes its spacing files' integers on as integers
    return value if isinstance(value, int) and not isinstance(value, bool) else float(value)
