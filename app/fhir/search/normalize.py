"""Value normalisation shared by indexing (write time) and searching (query time).

Strings: FHIR string search is case- and accent-insensitive. Accents are removed by Unicode
decomposition, so é -> e and the Sámi á, č, š, ž -> a, c, s, z; æ, ø, đ, ŋ and ŧ are letters of their own
and have no decomposition. Å would decompose to A + ring: it is kept, because å is a letter of the
Norwegian alphabet and "Åse" and "Ase" are different names. Then Unicode case folding.

Dates: a FHIR date, dateTime or instant is the range it covers at its precision (1972 covers the whole
year), as microseconds since the epoch in UTC; local times without an offset count as UTC.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal

STRING_INDEX_LENGTH = 200
MIN_TIME = -(2**62)  # open-ended ranges (Period without start or end)
MAX_TIME = 2**62
_KEEP = frozenset("åÅ")


# The index compares strings bytewise, i.e. by code point, where å (U+E5) < æ (U+E6) < ø (U+F8). The
# Norwegian alphabet ends ... z, æ, ø, å: the three letters are stored as private-use characters in that
# order (above every other letter), so that _sort follows the alphabet. Search values are normalised the
# same way, so matching is unaffected.
_NORWEGIAN_ORDER = str.maketrans({"æ": "\ue001", "ø": "\ue002", "å": "\ue003"})


def normalize_string(value: str) -> str:
    if value.isascii():  # most values: nothing to decompose or reorder, and casefold() is lower()
        return value.lower().strip()[:STRING_INDEX_LENGTH]
    return fold(value)


def fold(value: str) -> str:
    """normalize_string for any text: accents off (but å, æ, ø kept), case folded, Norwegian order."""
    out = []
    for char in unicodedata.normalize("NFC", value):
        if char in _KEEP:
            out.append("å")
            continue
        for part in unicodedata.normalize("NFKD", char):
            if not unicodedata.combining(part):
                out.append(part)
    folded = "".join(out).casefold().strip()
    return folded.translate(_NORWEGIAN_ORDER)[:STRING_INDEX_LENGTH]


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (for index range scans)."""
    return prefix + "\U0010ffff"


_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def date_range(text: str) -> tuple[int, int] | None:
    """[low, high] in microseconds (inclusive) for a FHIR date/dateTime/instant; None if malformed."""
    match = _DATE.fullmatch(text.strip())
    if not match:
        return None
    g = match.groupdict()
    offset = timedelta(0)
    try:
        year = int(g["y"])
        if g["m"] is None:
            start = datetime(year, 1, 1, tzinfo=UTC)
            step = timedelta(days=366 if calendar.isleap(year) else 365)
        elif g["d"] is None:
            month = int(g["m"])
            start = datetime(year, month, 1, tzinfo=UTC)
            step = timedelta(days=calendar.monthrange(year, month)[1])
        elif g["H"] is None:
            start = datetime(year, int(g["m"]), int(g["d"]), tzinfo=UTC)
            step = timedelta(days=1)
        else:
            start = datetime(year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), tzinfo=UTC)
            if g["S"] is None:
                step = timedelta(minutes=1)
            elif g["f"] is None:
                start = start.replace(second=int(g["S"]))
                step = timedelta(seconds=1)
            else:
                digits = g["f"][:6]
                start = start.replace(second=int(g["S"]), microsecond=int(digits.ljust(6, "0")))
                step = timedelta(microseconds=10 ** (6 - len(digits)))
            if g["tz"] and g["tz"] != "Z":
                sign = 1 if g["tz"][0] == "+" else -1
                offset = sign * timedelta(hours=int(g["tz"][1:3]), minutes=int(g["tz"][4:6]))
    except ValueError:
        return None
    # Bounds are added in microseconds, not as datetimes: the end of 9999-12-31 (or 0001-01-01T00:30+01:00
    # in UTC) lies outside what a datetime can hold, and datetime arithmetic there raised OverflowError.
    low = _micros(start) - offset // _MICROSECOND
    return low, low + step // _MICROSECOND - 1


_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def decimal_range(text: str) -> tuple[float, float, float] | None:
    """(value, low, high) for a search number: equality means within half a unit of the last digit.

    Only decimal notation is a number here (float() would also take "nan", "inf" and "1_000"). The bounds
    are computed in decimal arithmetic so that "0.2" gives exactly [0.15, 0.25], not 0.15000000000000002.
    """
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    number = Decimal(text)
    exponent = number.as_tuple().exponent  # "100" -> 0, "100.00" -> -2, "1e2" -> 2
    if not isinstance(exponent, int):  # nan/inf: the pattern already rules them out
        return None
    half = Decimal(5).scaleb(exponent - 1)
    return float(number), float(number - half), float(number + half)
