"""The package's one compiled module, the foreground loops (everything else is in pyproject.toml).

It is optional: where no C compiler is found the install goes on without it, and
``napari_autoconfig.foreground`` does the same work with numpy, about twice as slowly on masks.
pip hides the compiler's warning: ``napari-autoconfig --version`` says which loops are in use.
"""

from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class build_fresh(build_ext):
    """Compile the loops on every build, never reusing a module an earlier build left.

    setuptools skips an extension whose built file is newer than its source, and a failed
    optional build leaves an earlier file in place: a clone holding an old ``build/`` (or sources
    copied with their old times) would then install loops compiled from another ``_loops.c``, or
    loops where this machine has no compiler, without a word. The module is small (about a second
    to compile).
    """

    def finalize_options(self):
        super().finalize_options()
        self.force = True

    def build_extension(self, ext):
        # a compile that fails must leave no earlier module behind to be installed in its place
        Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
        super().build_extension(ext)


setup(
    ext_modules=[
        Extension(
            "napari_autoconfig._loops",
            sources=["src/napari_autoconfig/_loops.c"],
            optional=True,  # a failed build leaves the numpy loops in charge, it stops nothing
        )
    ],
    cmdclass={"build_ext": build_fresh},
)
