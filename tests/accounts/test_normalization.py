import pytest

from accounts.normalization import normalize_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice@Example.COM", "alice@example.com"),
        ("  bob@example.com \n", "bob@example.com"),
        ("ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｃｏｍ", "alice@example.com"),  # fullwidth look-alikes
        ("\u212alaus@example.com", "klaus@example.com"),  # KELVIN SIGN
        ("user@Bücher.de", "user@xn--bcher-kva.de"),  # internationalised domain → punycode
        ("alice@ex\u0430mple.com", "alice@xn--exmple-4nf.com"),  # Cyrillic 'а' homograph is visibly different
        ("alice@exa\u200bmple.com", "alice@example.com"),  # zero-width space dropped by IDNA mapping
        ("a@b@Example.com", "a@b@example.com"),  # split at the last @ (validation rejects it later)
        ("no-at-sign", "no-at-sign"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_email(raw, expected):
    assert normalize_email(raw) == expected


def test_normalize_email_leaves_unencodable_domains_for_the_validator_to_reject():
    raw = "x@" + "ü" * 70 + ".com"  # an IDNA label over 63 characters

    assert normalize_email(raw) == raw.lower()


def test_normalize_email_is_idempotent():
    for raw in ["ALICE@Bücher.de", "ａｌｉｃｅ@example.com", "\u212a@example.com"]:
        once = normalize_email(raw)
        assert normalize_email(once) == once
