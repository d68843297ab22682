"""People: a steward or participant is one person however their name is typed.

"Alice", "alice" and " ALICE " are one steward; so are "Mäkinen" typed with a combining
diaeresis and with the precomposed letter. The key is what read models group and filter
by; the name as first typed stays in the events, for people to read.
"""

from __future__ import annotations

import unicodedata


def person_key(name: str) -> str:
    """The identity of a person's name: Unicode-normalised (NFKC), case-folded, with runs
    of whitespace collapsed to one space and none at either end."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())
