"""Maps the two import packages onto their folders: kubepipe = sdk/kubepipe, kubepipe.components = components."""

from setuptools import find_packages, setup

PACKAGE_DIR = {"kubepipe": "sdk/kubepipe", "kubepipe.components": "components"}
packages = []
for name, folder in PACKAGE_DIR.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder) if not sub.startswith("components")]

# Data folders inside a package are packages too (setuptools warns it would ignore them otherwise); their files
# are package data (pyproject.toml).
packages += ["kubepipe.templates.docker"]
setup(packages=packages, package_dir=PACKAGE_DIR)
