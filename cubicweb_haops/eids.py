"""Eids written as text: in URL paths, form fields and redirect parameters."""

import re

# Eids are stored in 32-bit integer columns: a longer number is not an eid,
# and PostgreSQL would reject it in a query.
MAX_EID = 2**31 - 1

WHOLE_NUMBER = re.compile(r"(?<!\d)\d+(?!\d)")


def is_eid(text):
    """Return whether *text* is written like an eid: ASCII digits, within range."""
    return text.isascii() and text.isdigit() and int(text) <= MAX_EID


def replace_eids(text, replaced):
    """Return *text* with every whole number that is a key of *replaced* mapped."""
    return WHOLE_NUMBER.sub(lambda match: str(replaced.get(int(match.group()), match.group())), text)
