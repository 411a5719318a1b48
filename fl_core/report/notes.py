"""The line above each (dataset, partition) group of a table: several modules add a sentence to it."""

from __future__ import annotations


def add_group_note(table, key: tuple[str, str], text: str) -> None:
    """Append ``text`` to the line shown above the group ``key`` of ``table`` (a ``tables.Table``)."""
    notes = table.group_notes
    notes[key] = f"{notes[key]} {text}" if notes.get(key) else text
