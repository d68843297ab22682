from domain.people import person_key


def test_case_spacing_and_composition_do_not_make_another_person() -> None:
    assert person_key("Alice") == person_key(" alice ") == person_key("ALICE")
    assert person_key("Ma\u0308kinen") == person_key("Mäkinen") == "mäkinen"
    assert person_key("Anna  Maria") == "anna maria"


def test_different_people_stay_different() -> None:
    assert person_key("Alice") != person_key("Alicia")
    assert person_key("Anna Maria") != person_key("Annamaria")
