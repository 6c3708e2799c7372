"""Packaging for txsockjs, the SockJS server for Twisted."""

from setuptools import find_packages, setup

import os

_here = os.path.dirname(os.path.abspath(__file__))
try:
    with open(os.path.join(_here, "README.rst"), encoding="utf-8") as readme:
        long_description = readme.read()
except FileNotFoundError:
    long_description = ""

setup(
    name="txsockjs",
    version="2.0.0.dev0",
    description="SockJS server for Twisted: every SockJS transport for any Twisted protocol",
    long_description=long_description,
    long_description_content_type="text/x-rst",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["txsockjs", "txsockjs.*"]) + ["twisted.plugins"],
    package_data={"txsockjs": ["py.typed", "static/*"], "twisted": ["plugins/*.py"]},
    include_package_data=True,
    zip_safe=False,
    install_requires=[
        # Bounds: the oldest releases tools/test.sh tests (tools/lowest-versions.txt), and
        # the next major release, which nothing has been tested with yet.
        "twisted[tls]>=24.7,<27",
        "autobahn>=24.4.2,<27",
        "zope.interface>=6",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "treq>=24.9",
            "hypothesis>=6.100",
            "playwright>=1.40",
            "klein>=24.8",
            "ruff>=0.6",
            "mypy>=1.11",
            "mypy-zope>=1.0",
            "towncrier>=24.7",
            "txredisapi>=1.6",
            "prometheus-client>=0.20",
        ],
        "docs": ["sphinx>=7", "repoze.sphinx.autointerface>=1.0"],
        "redis": ["txredisapi>=1.6"],
        "metrics": ["prometheus-client>=0.20"],
    },
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Topic :: Internet :: WWW/HTTP :: HTTP Servers",
        "Typing :: Typed",
    ],
)
