"""Content fingerprints of Files: what versioned image URLs and ETags carry.

A File's fingerprint derives from its ``data_hash`` attribute, which
cubicweb-file fills in when its ``compute-hash`` option is on and which this
cube's hooks fill in otherwise, so serving a fingerprint or an ETag never
reads the bytes.
"""

import re

FINGERPRINT_LENGTH = 16

# cubicweb-file stores "{ALGORITHM}HEXDIGEST"; versions before 1.x stored a
# bare SHA-1 digest.
DATA_HASH = re.compile(r"^(?:\{[A-Za-z0-9_-]+\})?(?P<digest>[0-9a-fA-F]+)$")
FINGERPRINT = re.compile(rf"^[0-9a-f]{{{FINGERPRINT_LENGTH}}}$")


def digest_of(data_hash):
    """Return the lowercase hex digest in *data_hash*, or None if it has none."""
    match = DATA_HASH.match(data_hash or "")
    return match.group("digest").lower() if match else None


def fingerprint_of(data_hash):
    """Return the short fingerprint of *data_hash* for URLs, or None if it has none."""
    digest = digest_of(data_hash)
    return digest[:FINGERPRINT_LENGTH] if digest else None


def is_fingerprint(text):
    return bool(FINGERPRINT.match(text))
