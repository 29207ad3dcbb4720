"""The package's one compiled module, the foreground loops (everything else is in pyproject.toml).

It is optional: where no C compiler is found the install goes on without it, and
``napari_autoconfig.foreground`` does the same work with numpy, about twice as slowly on masks.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "napari_autoconfig._loops",
            sources=["src/napari_autoconfig/_loops.c"],
            optional=True,  # a failed build leaves the numpy loops in charge, it stops nothing
        )
    ]
)
