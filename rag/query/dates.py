"""Date-filter bounds as people type them (YYYY, YYYY-MM or YYYY-MM-DD), for the CLI and the page.

The filters compare ISO dates as strings, so an unchecked bound such as "last week" or
"2025-13" would silently match the wrong papers; here it is an InputError naming the format.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from rag.errors import InputError

_DATE = re.compile(r"(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?")


def date_bound(value: str | None, bound: str) -> str | None:
    """'' -> None; YYYY, YYYY-MM or YYYY-MM-DD -> the inclusive ISO day the filter compares with
    (the first day of the period for `bound="from"`, the last for `"to"`)."""
    value = (value or "").strip()
    if not value:
        return None
    m = _DATE.fullmatch(value)
    try:
        year, month, day = int(m[1]), int(m[2] or (1 if bound == "from" else 12)), m[3]
        last = calendar.monthrange(year, month)[1]  # (the first of next month fails for December 9999)
        return dt.date(year, month, int(day) if day else (1 if bound == "from" else last)).isoformat()
    except (TypeError, ValueError, calendar.IllegalMonthError):
        raise InputError(f"date {bound} {value!r} is not a date; use YYYY-MM-DD, YYYY-MM or YYYY") from None


def date_range(date_from: str | None, date_to: str | None) -> tuple[str | None, str | None]:
    """Both bounds, checked, and checked to be in order."""
    start, end = date_bound(date_from, "from"), date_bound(date_to, "to")
    if start and end and start > end:
        raise InputError(f"the date range {start} … {end} is empty; the 'from' date must come first")
    return start, end
