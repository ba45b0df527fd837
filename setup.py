"""Build step the declarative ``pyproject.toml`` cannot state: the wheel carries the committed split files.

``data_manifests/`` stays at the repository's top level (a clone reads it there); ``build_py`` copies its
``*.csv`` and ``*.md`` files into ``agegender_tf/_manifests/`` of the build, so ``pip install .`` (not
``-e``) finds them too (``agegender_tf.paths.manifests_dir``). Everything else lives in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
MANIFESTS = ROOT / "data_manifests"
PACKAGED = Path("agegender_tf", "_manifests")
SUFFIXES = (".csv", ".md")


class BuildPyWithManifests(build_py):
    """``build_py`` plus a copy of ``data_manifests/``'s split files into the built package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the checkout's folder
            return
        for source in manifest_files():
            target = Path(self.build_lib) / PACKAGED / source.relative_to(MANIFESTS)
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return outputs + [str(Path(self.build_lib) / PACKAGED / p.relative_to(MANIFESTS)) for p in manifest_files()]


def manifest_files() -> list[Path]:
    if not MANIFESTS.is_dir():
        raise SystemExit(f"{MANIFESTS} is missing: build the wheel from a clone or from the sdist")
    return sorted(p for p in MANIFESTS.rglob("*") if p.is_file() and p.suffix in SUFFIXES)


setup(cmdclass={"build_py": BuildPyWithManifests})
