"""Check, in one process, that napari_autoconfig.auto_config returns biom3d's own numbers.

Needs biom3d installed next to napari-autoconfig (it brings torch; a CPU build is enough):

    pip install torch biom3d
    python benchmarks/compare_with_biom3d.py [--medians 3000] [--images DIR --masks DIR]

It plans random median sizes under several patch budgets with both packages, compares the
augmentation patch on the reference's examples, ``auto_config`` on a few medians, and
``compute_median`` / ``data_fingerprint`` on a folder (the bundled sample by default). Medians on
which biom3d itself crashes are counted, not compared. Exit status 1 on any difference.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

BUDGETS = ((128, 128, 128), (96, 96, 96), (64, 128, 128), (160, 160, 160))


def compare_planner(biom3d, ours, count: int, seed: int = 1) -> int:
    """Plan ``count`` random medians (1 to ~1800 per axis) with both; return the differences."""
    rng = np.random.default_rng(seed)
    same = crashes = differ = 0
    for _ in range(count):
        dims = tuple(int(v) for v in np.exp(rng.uniform(0, 7.5, 3)).astype(int) + 1)
        budget = BUDGETS[rng.integers(len(BUDGETS))]
        try:
            theirs = biom3d.find_patch_pool_batch(dims, max_dims=budget)
        except Exception:  # biom3d's broadcasting crash, or its endless shrink guard
            crashes += 1
            continue
        mine = ours.find_patch_pool_batch(dims, max_dims=budget)
        if [list(theirs[0]), list(theirs[1]), int(theirs[2])] == [
            list(mine[0]),
            list(mine[1]),
            int(mine[2]),
        ]:
            same += 1
        else:
            differ += 1
            print(f"DIFFERENT: median {dims}, max_dims {budget}: biom3d {theirs}, ours {mine}")
    print(f"find_patch_pool_batch: {same} identical, {differ} different, {crashes} crash biom3d")
    return differ


def compare_examples(biom3d, ours) -> int:
    differ = 0
    for patch in ([64, 64, 64], [128, 128, 32], [96, 64, 24], [80, 80, 32], [40, 224, 224]):
        if list(biom3d.get_aug_patch(patch)) != list(ours.get_aug_patch(patch)):
            differ += 1
            print(f"DIFFERENT get_aug_patch({patch})")
    for median in ([96, 512, 512], [52, 232, 232], [1, 256, 256], [2, 40, 300, 300]):
        theirs, mine = biom3d.auto_config(median=median), ours.auto_config(median=median)
        if [int(theirs[0]), *(list(map(int, x)) for x in theirs[1:])] != [
            int(mine[0]),
            *(list(map(int, x)) for x in mine[1:]),
        ]:
            differ += 1
            print(f"DIFFERENT auto_config(median={median}): biom3d {theirs}, ours {mine}")
    print(f"get_aug_patch and auto_config examples: {differ} different")
    return differ


def compare_folder(biom3d, ours, images: Path, masks: Path | None) -> int:
    """compute_median and data_fingerprint on a folder; biom3d's (1, Z, Y, X) is compared as
    (Z, Y, X) (it reads single-channel ImageJ TIFFs with a leading 1)."""

    def spatial(size) -> list[int]:
        size = [int(v) for v in np.asarray(size).ravel()]
        return size[1:] if len(size) == 4 and size[0] == 1 else size

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = biom3d.compute_median(str(images), return_spacing=True)
        mine = ours.compute_median(str(images), return_spacing=True)
    differ = int(
        spatial(theirs[0]) != spatial(mine[0])
        or list(map(float, theirs[1])) != list(map(float, mine[1]))
    )
    theirs = biom3d.data_fingerprint(str(images), str(masks) if masks else None)
    mine = ours.data_fingerprint(str(images), str(masks) if masks else None)
    differ += int(
        spatial(theirs[0]) != spatial(mine[0])
        or np.asarray(theirs[1]).tolist() != np.asarray(mine[1]).tolist()
        or [float(v) for v in theirs[2:]] != [float(v) for v in mine[2:]]
    )
    print(f"compute_median and data_fingerprint on {images}: {differ} different")
    print(f"  biom3d: {[np.asarray(v).tolist() for v in theirs]}")
    print(f"  ours:   {[np.asarray(v).tolist() for v in mine]}")
    return differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--medians", type=int, default=3000, help="random medians to plan")
    parser.add_argument("--images", type=Path, help="folder of images (default: the sample)")
    parser.add_argument("--masks", type=Path, help="folder of masks")
    args = parser.parse_args()
    try:
        import biom3d.auto_config as biom3d
    except ImportError:
        print("biom3d is not installed: pip install torch biom3d", file=sys.stderr)
        return 2
    import napari_autoconfig.auto_config as ours
    from napari_autoconfig.sample import sample_folder

    images, masks = args.images, args.masks
    if images is None:
        images, masks = sample_folder() / "images", sample_folder() / "masks"
    differ = compare_planner(biom3d, ours, args.medians)
    differ += compare_examples(biom3d, ours)
    differ += compare_folder(biom3d, ours, images, masks)
    print("identical" if not differ else f"{differ} difference(s)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
