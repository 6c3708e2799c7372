"""Fail unless the installed distributions are exactly the ones a constraints file pins."""

from __future__ import annotations

import sys
from importlib.metadata import version


def main(path: str) -> int:
    wrong = []
    with open(path, encoding="utf-8") as pins:
        for line in pins:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, _, pinned = line.partition("==")
            installed = version(name)
            if installed != pinned:
                wrong.append(f"{name}: {installed} installed, {pinned} pinned")
    for line in wrong:
        sys.stderr.write(line + "\n")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
