import pytest

from conversations.phones import brazilian_phone_problem, normalize_phone


@pytest.mark.parametrize(
    "raw",
    ["5511987654321", "551187654321", "+55 (11) 98765-4321", "+55 11 8765-4321"],
)
def test_brazilian_mobile_variants_share_one_canonical_form(raw):
    assert normalize_phone(raw) == "+5511987654321"


def test_national_numbers_typed_by_people_get_the_country_code():
    assert normalize_phone("(11) 98765-4321", national=True) == "+5511987654321"
    assert normalize_phone("11 8765-4321", national=True) == "+5511987654321"


def test_landline_keeps_eight_digits():
    assert normalize_phone("551133334444") == "+551133334444"


def test_foreign_number_is_left_alone():
    assert normalize_phone("16505551234") == "+16505551234"


@pytest.mark.parametrize("raw", ["", None, "abc", "123", "55001234", "5500987654321"])
def test_implausible_numbers_are_refused(raw):
    assert normalize_phone(raw) is None


def test_a_national_number_with_the_trunk_zero_is_brazilian():
    assert normalize_phone("011 98765-4321", national=True) == "+5511987654321"
    assert normalize_phone("0 11 3232-0004", national=True) == "+551132320004"


@pytest.mark.parametrize(
    ("e164", "problem"),
    [
        ("+5511987654321", None),
        ("+551132320004", None),
        ("+5510987654321", "area_code"),  # no DDD 10
        ("+5520987654321", "area_code"),
        ("+5511887654321", "mobile"),  # nine digits that do not start with 9
        ("+551112345678", "landline"),  # eight digits starting with 1
        ("+16505551234", "length"),  # not Brazilian at all
    ],
)
def test_brazilian_numbers_are_checked_beyond_plausibility(e164, problem):
    assert brazilian_phone_problem(e164) == problem
