"""Moved to :mod:`harness` (the section writer is one part of it); re-exported until every script is ported."""

from harness import HEADER, host, load, section, write_section  # noqa: F401  benchmarks/ is the script's dir
