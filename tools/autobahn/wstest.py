# -*- coding: utf-8 -*-
"""
Run Autobahn|Testsuite's ``wstest`` from the folder tools/autobahn/install.sh filled.

Python 2.7 only (as autobahntestsuite is): ``python2.7 tools/autobahn/wstest.py -m
fuzzingclient -s spec.json``. A plain ``PYTHONPATH`` is not enough: ``pip install --target``
installs zope.interface as a namespace package through a ``.pth`` file, which only
``site.addsitedir`` reads, so the folder is added that way before wstest is imported.

``--autobahn-import-check`` only imports wstest and prints its version.
"""
from __future__ import print_function

import os
import site
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(HERE)), ".cache", "autobahntestsuite")


def main():
    folder = os.environ.get("AUTOBAHN_TESTSUITE_DIR") or DEFAULT_DIR
    if not os.path.isdir(folder):
        sys.exit("no autobahntestsuite in %s: run tools/autobahn/install.sh" % folder)
    site.addsitedir(folder)
    from autobahntestsuite import wstest

    if sys.argv[1:] == ["--autobahn-import-check"]:
        import autobahntestsuite

        print("autobahntestsuite %s from %s" % (autobahntestsuite.__version__, folder))
        return
    sys.argv[0] = "wstest"
    wstest.run()


if __name__ == "__main__":
    main()
