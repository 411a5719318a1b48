"""Exceptions a sweep records as a cell outcome instead of crashing."""


class CellNotRunnable(Exception):
    """This method cannot run on this cell (e.g. no LoRA rank fits the budget). The sweep records
    the cell as ``skipped`` with this message as the reason, and goes on."""


class StoreError(RuntimeError):
    """The results directory cannot be used; the message says what to fix."""
