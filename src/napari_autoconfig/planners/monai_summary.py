"""MONAI Auto3DSeg's ``stats_summary`` from the by-case entries (``SegSummarizer.summarize``).

The reducers of monai 1.6.1 (``ImageStatsSumm``, ``FgImageStatsSumm``, ``LabelStatsSumm``,
``ImageHistogramSumm``), with ``average=True``, their quirks reproduced:

- intensities summarise channel 0 only (MONAI reads element ``[0]`` of each per-channel list);
- per-label summaries index each case's label list by the label *value*: a case whose labels are
  ``[0, 3]`` gives label 1 the statistics of its label 3, and label 3 (index 3) finds nothing,
  so it is summarised over ``[0]``;
- the histogram summary is the sum of the cases' counts, built in the first case's own list, so
  that case's histogram becomes the sum too (and the by-case file writes it as a YAML alias).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .monai_stats import SUMMARY_KEYS, sample_operations, summary_operations


def _get(entry: dict, keys: Sequence) -> object | None:
    """``ConfigParser.get("a#b#3#c")``: dict keys and list indices, None where missing."""
    value: object = entry
    for key in keys:
        if isinstance(value, dict):
            if key not in value:
                return None
            value = value[key]
        elif isinstance(value, list):
            index = int(key)
            if not -len(value) <= index < len(value):
                return None
            value = value[index]
        else:
            return None
    return value


def _concat(entries: Sequence[dict], keys: Sequence, ragged: bool = False) -> np.ndarray:
    """MONAI's ``concat_val_to_np(..., allow_missing=True)``."""
    found = [np.array(v) for v in (_get(e, keys) for e in entries) if v is not None]
    if not found:
        return np.array([0])
    return np.concatenate(found) if ragged else np.concatenate([found])


def _sample(array: np.ndarray) -> dict:
    return sample_operations(array, (0, 1) if array.ndim > 2 else 0)


def _intensity(entries: Sequence[dict], keys: Sequence) -> dict:
    """``SummaryOperations`` over channel 0 of each case's intensity dict at ``keys``."""
    return summary_operations({k: _concat(entries, [*keys, 0, k]) for k in SUMMARY_KEYS})


def summarize(entries: list[dict], do_ccp: bool, hist_bins: int) -> dict:
    """MONAI's ``stats_summary`` (without ``n_cases``) of the by-case ``entries``.

    ``entries``' first histogram is replaced by the summed one, as MONAI does.
    """
    if not entries:
        return {}
    image_stats: dict = {}
    for key in ("shape", "channels", "cropped_shape", "spacing", "sizemm"):
        image_stats[key] = _sample(_concat(entries, ["image_stats", key]))
    image_stats["intensity"] = _intensity(entries, ["image_stats", "intensity"])
    report: dict = {
        "image_stats": image_stats,
        "image_foreground_stats": {
            "intensity": _intensity(entries, ["image_foreground_stats", "intensity"])
        },
    }
    # label_union: a Python set's order (ascending for small whole numbers)
    union = list(set(_concat(entries, ["label_stats", "labels"], ragged=True).tolist()))
    per_label = []
    for label in union:
        where = ["label_stats", "label", label]
        stats = {
            "foreground_percentage": _sample(_concat(entries, [*where, "foreground_percentage"]))
        }
        if do_ccp:
            stats["ncomponents"] = _sample(_concat(entries, [*where, "ncomponents"]))
            stats["shape"] = _sample(_concat(entries, [*where, "shape"], ragged=True))
        stats["image_intensity"] = _intensity(entries, [*where, "image_intensity"])
        per_label.append(stats)
    report["label_stats"] = {
        "labels": union,
        "image_intensity": _intensity(entries, ["label_stats", "image_intensity"]),
        "label": per_label,
    }
    if hist_bins:
        summed = entries[0]["image_histogram"]
        for channel in summed:
            channel["counts"] = np.array(channel["counts"])
        for entry in entries[1:]:
            for channel, other in zip(summed, entry["image_histogram"]):
                channel["counts"] = channel["counts"] + np.array(other["counts"])
        for channel in summed:
            channel["counts"] = channel["counts"].tolist()
        report["image_histogram"] = {"histogram": summed}
    return report
