"""Real image bytes for the tests, made with Pillow."""

import hashlib
import io

from PIL import Image

FORMATS = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "gif": ("GIF", "image/gif"),
}


def image_bytes(kind="png", color="red", size=(8, 8)):
    """Return an image of *kind* (png, jpeg or gif) filled with *color*."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, FORMATS[kind][0])
    return buffer.getvalue()


def mimetype(kind):
    return FORMATS[kind][1]


def decoded_size(data):
    """Return the (width, height) of image bytes, proving that they decode."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def fingerprint(data):
    """Return the fingerprint that image URLs carry for *data*, with the default sha256."""
    return hashlib.sha256(data).hexdigest()[:16]
