"""The wheel's layout; everything else is in setup.cfg.

pyrie's entry point is the package ``pyrie`` (``packaging/pyrie``). Its own packages go, in the wheel, under
``pyrie/_lib`` rather than at the top of site-packages, so that installed beside a function's packages they shadow
none of them (``packaging/pyrie/__init__.py`` says how pyrie finds them). An editable install keeps them where they
are in the source tree.
"""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

OWN_PACKAGES = ("pyrie_core", "supervisor", "runtime_api", "invoke_api", "pyrie_runtime_client", "pyrie_durable")


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        private = Path(self.build_lib) / "pyrie" / "_lib"
        private.mkdir(parents=True, exist_ok=True)
        for name in OWN_PACKAGES:
            built, moved = Path(self.build_lib) / name, private / name
            if moved.exists():
                shutil.rmtree(moved)
            if built.exists():
                built.rename(moved)


setup(
    packages=["pyrie", *find_packages(include=[*OWN_PACKAGES, *(f"{name}.*" for name in OWN_PACKAGES)])],
    package_dir={"pyrie": "packaging/pyrie"},
    cmdclass={"build_py": BuildPy},
)
