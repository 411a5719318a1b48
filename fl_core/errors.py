"""Exceptions a sweep records as a cell outcome instead of crashing, and the config error the CLI
reports as one line (exit code 2)."""


class CellNotRunnable(Exception):
    """This method cannot run on this cell (e.g. no LoRA rank fits the budget). The sweep records
    the cell as ``skipped`` with this message as the reason, and goes on."""


class StoreError(RuntimeError):
    """The results directory cannot be used; the message says what to fix."""


class ConfigError(ValueError):
    """A config problem the user can fix; the message names the key and what is allowed."""
