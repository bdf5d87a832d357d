"""Maps the top-level folders into the `flywheel.*` import namespace.

`server/` installs as `flywheel.server`, `contracts/` as `flywheel.contracts`,
`plugins/` as `flywheel.plugins` and `migrations/` as `flywheel.migrations`, so
nothing squats generic names in site-packages. Everything else about the
distribution lives in pyproject.toml; this file only computes the package list,
which pyproject.toml cannot express for remapped folders.
"""

from setuptools import find_packages, setup

FOLDERS = {"server": "flywheel.server", "contracts": "flywheel.contracts",
           "plugins": "flywheel.plugins", "migrations": "flywheel.migrations"}

packages, package_dir = [], {}
for folder, name in FOLDERS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(where=folder)]

setup(packages=packages, package_dir=package_dir)
