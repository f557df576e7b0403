"""The one thing pyproject.toml cannot say: the package list.

Every package under digest/ is found automatically (namespace folders included, such as
Alembic's versions/), and digest.templates is added: it is the top-level templates/ folder,
mapped into the package by [tool.setuptools.package-dir] in pyproject.toml, so that a wheel
carries the templates as digest/templates/. All other settings are in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

CODE = find_namespace_packages(include=["digest", "digest.*"], exclude=["*__pycache__"])
TEMPLATES = ["digest.templates", *("digest.templates." + p for p in find_namespace_packages("templates"))]

setup(packages=[*CODE, *TEMPLATES])
