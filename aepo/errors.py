"""The toolkit's one kind of expected failure: bad input from the user."""

from __future__ import annotations


class UserError(ValueError):
    """A value, file or directory the user gave cannot be used. The message is one line that
    names it and says what to do; the CLI prints it and exits 2 (no traceback)."""
