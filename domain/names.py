"""Names as a search finds them: without accents, case or punctuation, by trigrams.

The embedded PostgreSQL has neither ``unaccent`` nor ``pg_trgm``, so both happen here:
``normalise`` is what a name is compared as ("Äcme  OY!" and "acme oy" are one), and its
trigrams follow pg_trgm's scheme (each word padded with two spaces in front and one
behind), so similarity means what it means there: shared trigrams over all of both.
"""

from __future__ import annotations

import unicodedata

# pg_trgm's default threshold (pg_trgm.similarity_threshold): one typo in a short
# two-word name ("Acne Oy" for "Acme Oy") is above it, unrelated names are below.
SIMILAR = 0.3
# Latin letters that Unicode does not decompose into a base letter and a mark.
_UNDECOMPOSED = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "ł": "l", "þ": "th", "ı": "i"})


def normalise(name: str) -> str:
    """The name as searches compare it: case-folded, accents and other marks removed
    (NFKD), letters and digits kept, anything else a single space between words."""
    decomposed = unicodedata.normalize("NFKD", name.casefold().translate(_UNDECOMPOSED))
    kept = "".join(
        ch if ch.isalnum() else " " for ch in decomposed.translate(_UNDECOMPOSED) if not unicodedata.combining(ch)
    )
    return " ".join(kept.split())


def _grams(text: str) -> list[str]:
    return [text[i : i + 3] for i in range(len(text) - 2)]


def trigrams(normalised: str) -> frozenset[str]:
    """pg_trgm's trigrams of a normalised name: each word as ``"  word "``."""
    return frozenset(gram for word in normalised.split() for gram in _grams(f"  {word} "))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """pg_trgm's similarity of two trigram sets: shared / (|a| + |b| - shared)."""
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared) if a or b else 0.0


def substring_trigrams(normalised: str) -> frozenset[str]:
    """Trigrams every name containing ``normalised`` has (pg_trgm's LIKE '%q%' scheme):
    words padded only where the query itself has a word boundary, so the first word may
    end another word and the last may begin one. A query too short to have any ("ab")
    gets its word-start trigrams: it is then found where a word begins with it."""
    words = normalised.split()
    found = {
        gram
        for i, word in enumerate(words)
        for gram in _grams(("  " if i else "") + word + (" " if i < len(words) - 1 else ""))
    }
    if found or not words:
        return frozenset(found)
    return frozenset(_grams(f"  {words[0]}"))


def word_start_only(normalised: str) -> bool:
    """Whether ``substring_trigrams`` could only find the query at the start of a word."""
    words = normalised.split()
    return len(words) == 1 and len(words[0]) < 3
