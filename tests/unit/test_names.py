from domain.names import SIMILAR, normalise, similarity, substring_trigrams, trigrams, word_start_only


def close(a: str, b: str) -> float:
    return similarity(trigrams(normalise(a)), trigrams(normalise(b)))


def test_case_accents_punctuation_and_spacing_do_not_make_another_name() -> None:
    assert normalise("ACME Oy") == normalise("acme oy") == normalise("  Acme,   OY! ") == "acme oy"
    assert normalise("Äcme") == normalise("A\u0308cme") == "acme"  # precomposed and combining alike
    assert normalise("Søren Ærø Łódź") == "soren aero lodz"  # letters Unicode does not decompose
    assert normalise("Straße") == "strasse"
    assert normalise("Ｔｅｓｔ²") == "test2"  # compatibility forms (NFKD)
    assert normalise("O'Brien & Co.") == "o brien co"
    assert normalise("!!! ...") == ""


def test_trigrams_are_pg_trgms_words_padded_two_in_front_one_behind() -> None:
    assert trigrams("acme oy") == {"  a", " ac", "acm", "cme", "me ", "  o", " oy", "oy "}
    assert trigrams("a") == {"  a", " a "}
    assert trigrams("") == frozenset()
    assert trigrams("oy oy") == trigrams("oy")  # a set: a repeated word counts once


def test_similar_names_are_found_and_unrelated_ones_are_not() -> None:
    assert close("acme oy", "ACME Oy") == 1.0
    assert close("Äcme", "Acme") == 1.0
    assert close("Acne Oy", "Acme Oy") == 5 / 11  # one typo: 5 shared of 11 in all
    assert close("Acne Oy", "Acme Oy") >= SIMILAR
    assert close("Acme", "Acme Oy") == 5 / 8 >= SIMILAR
    assert close("Globex Corporation", "Acme Oy") < SIMILAR
    assert close("Nokia Oy", "Acme Oy") < SIMILAR  # the shared "oy" alone is not enough
    assert close("", "Acme") == 0.0 and similarity(frozenset(), frozenset()) == 0.0


def test_substring_trigrams_are_held_by_every_name_containing_the_query() -> None:
    assert substring_trigrams("cme") == {"cme"}  # inside a word: no padding
    assert substring_trigrams("cme o") == {"cme", "me ", "  o"}
    for name, query in [("acme oy", "cme o"), ("acme oy", "me oy"), ("tampere university", "e univ")]:
        assert query in name and substring_trigrams(query) <= trigrams(name)
    # Too short for a trigram: found where a word begins with it.
    assert substring_trigrams("oy") == {"  o", " oy"} and word_start_only("oy")
    assert substring_trigrams("oy") <= trigrams("acme oy") and not substring_trigrams("oy") <= trigrams("toyota")
    assert not word_start_only("acm") and not word_start_only("a b")
    assert substring_trigrams("") == frozenset()
