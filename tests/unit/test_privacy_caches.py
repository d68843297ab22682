"""What the process works out from subjects and keys is forgotten once an erasure is seen."""

import pytest

from services.privacy import KeyStore, _cipher, subject_hash

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("forget", ["forget_all", "forget"])
def test_an_erasure_seen_empties_the_subject_hashes_and_ciphers(forget: str) -> None:
    keys = KeyStore("postgresql:///never-connected", "unused")  # forgetting needs no database
    subject_hash("person:Alice Virtanen")
    _cipher(bytes(32))
    assert subject_hash.cache_info().currsize > 0 and _cipher.cache_info().currsize > 0
    getattr(keys, forget)(*(() if forget == "forget_all" else (subject_hash("person:Alice Virtanen"),)))
    assert subject_hash.cache_info().currsize == 0  # no name of anyone stays behind
    assert _cipher.cache_info().currsize == 0
