"""Sphinx configuration for the txsockjs documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "txsockjs"
author = "the txsockjs developers"
copyright = "the txsockjs developers"
release = "2.0.0.dev0"
version = "2.0"

extensions = ["sphinx.ext.autodoc", "repoze.sphinx.autointerface"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options: dict[str, object] = {}
# Names the type hints mention that have no page in this documentation.
nitpicky = False
suppress_warnings: list[str] = []

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
html_title = "txsockjs 2"
