"""Write the sample dataset shipped in ``resources/sample`` (deterministic; run from the repo root).

python resources/make_sample.py
"""

from pathlib import Path

from napari_autoconfig.sample import make_sample

if __name__ == "__main__":
    images, masks = make_sample(Path(__file__).parent / "sample")
    print(f"wrote {images} and {masks}")
