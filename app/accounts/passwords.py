"""Passwords: hashing with Argon2id (argon2-cffi, cost settable for the test suite), and strength.

Strength follows NIST SP 800-63B: no composition rules, at least 8 characters, and a check against
what attackers try first — common and breached passwords, words, names, keyboard patterns, dates, and
the member's own email and name — done offline by zxcvbn with its bundled frequency lists."""
from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app, has_app_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from zxcvbn import zxcvbn


@lru_cache(maxsize=4)
def _hasher_for(time_cost: int, memory_kib: int) -> tuple[PasswordHasher, str]:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1 if memory_kib < 65536 else 4)
    # A hash to verify against when the email is unknown, so both paths take the same time.
    return hasher, hasher.hash("threshold-timing-equaliser")


def _hasher() -> tuple[PasswordHasher, str]:
    config = current_app.config if has_app_context() else {}
    # Defaults: argon2-cffi's RFC 9106 "low memory" profile (t=3, 64 MiB).
    return _hasher_for(int(config.get("ARGON2_TIME_COST", 3)), int(config.get("ARGON2_MEMORY_KIB", 65536)))


def hash_password(password: str) -> str:
    return _hasher()[0].hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; an unknown user still costs one verification."""
    hasher, dummy = _hasher()
    try:
        return hasher.verify(password_hash or dummy, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher()[0].check_needs_rehash(password_hash)


#: zxcvbn's score a password needs (0-4): 3 is "safely unguessable", about 10^8 guesses or more.
MIN_SCORE = 3
#: zxcvbn reads at most 72 characters (its own limit). Its search for substitutions ("@" for "a")
#: grows with the number of different substitutable characters and with length: 72 characters using
#: 17 of them cost seconds of CPU (a denial of service), while 5 or fewer stay near 0.2 s. So a
#: password using more than 5 is judged by its first 16 characters (under one Argon2 hash's cost).
_CHECKED_LENGTH = 72
_SHORT_LENGTH = 16
_SUBSTITUTES = frozenset("!$%(+0123456789<@[{|")
#: zxcvbn keeps the member's words in a module-level dictionary while it runs: one call at a time.
_ZXCVBN_LOCK = threading.Lock()


def _feedback() -> dict[str, str]:
    """zxcvbn's English feedback (a fixed set of sentences) in the reader's language."""
    return {
        "Use a few words, avoid common phrases.": _l("Use a few words, avoid common phrases."),
        "No need for symbols, digits, or uppercase letters.": _l("No need for symbols, digits, or uppercase letters."),
        "Add another word or two. Uncommon words are better.": _l("Add another word or two. Uncommon words are better."),
        "Straight rows of keys are easy to guess.": _l("Straight rows of keys are easy to guess."),
        "Short keyboard patterns are easy to guess.": _l("Short keyboard patterns are easy to guess."),
        "Use a longer keyboard pattern with more turns.": _l("Use a longer keyboard pattern with more turns."),
        'Repeats like "aaa" are easy to guess.': _l("Repeats like “aaa” are easy to guess."),
        'Repeats like "abcabcabc" are only slightly harder to guess than "abc".':
            _l("Repeats like “abcabcabc” are only slightly harder to guess than “abc”."),
        "Avoid repeated words and characters.": _l("Avoid repeated words and characters."),
        'Sequences like "abc" or "6543" are easy to guess.': _l("Sequences like “abc” or “6543” are easy to guess."),
        "Avoid sequences.": _l("Avoid sequences."),
        "Recent years are easy to guess.": _l("Recent years are easy to guess."),
        "Avoid recent years.": _l("Avoid recent years."),
        "Avoid years that are associated with you.": _l("Avoid years that are associated with you."),
        "Dates are often easy to guess.": _l("Dates are often easy to guess."),
        "Avoid dates and years that are associated with you.": _l("Avoid dates and years that are associated with you."),
        "This is a top-10 common password.": _l("This is one of the 10 most common passwords."),
        "This is a top-100 common password.": _l("This is one of the 100 most common passwords."),
        "This is a very common password.": _l("This is a very common password."),
        "This is similar to a commonly used password.": _l("This is similar to a commonly used password."),
        "A word by itself is easy to guess.": _l("A word by itself is easy to guess."),
        "Names and surnames by themselves are easy to guess.": _l("Names and surnames by themselves are easy to guess."),
        "Common names and surnames are easy to guess.": _l("Common names and surnames are easy to guess."),
        "Capitalization doesn't help very much.": _l("Capital letters do not help very much."),
        "All-uppercase is almost as easy to guess as all-lowercase.": _l("All capitals are almost as easy to guess as all lower case."),
        "Reversed words aren't much harder to guess.": _l("Reversed words are not much harder to guess."),
        "Predictable substitutions like '@' instead of 'a' don't help very much.":
            _l("Predictable substitutions like “@” instead of “a” do not help very much."),
    }


def weakness(password: str, personal: Iterable[str] = ()) -> str | None:
    """Why `password` would be easy to guess, in the reader's language; None when it is strong enough.

    `personal` are the member's own words (email, name): a password made of them is weak too.
    """
    words = {part for text in personal if text for part in (text.lower(), *text.lower().replace("@", " ").replace(".", " ").split())}
    length = _SHORT_LENGTH if len(_SUBSTITUTES.intersection(password)) > 5 else _CHECKED_LENGTH
    words |= {word[:length] for word in words}  # a long email typed as the password is still the email
    with _ZXCVBN_LOCK:
        result = zxcvbn(password[:length], user_inputs=sorted(words))
    if result["score"] >= MIN_SCORE:
        return None
    translated = _feedback()
    feedback = result["feedback"]
    said = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
    # An English sentence we have no translation for is left out rather than shown untranslated.
    reasons = [str(translated[text]) for text in said if text in translated]
    return " ".join([_("This password is too easy to guess."), *reasons])
