"""QR codes of pairing invites: render them (segno) and read them back from a picture.

The QR code holds exactly the invite URI (SPEC.md section 11.2), in byte mode with
error correction level M. Reading a picture needs zxing-cpp and Pillow; they are
imported only when a picture is read, so showing a code needs neither.
"""

from __future__ import annotations

import io
from pathlib import Path

import segno

#: Pixels per QR module in the PNG, and the quiet zone in modules.
PNG_SCALE = 8
QUIET_ZONE = 4


class QrImageError(ValueError):
    """A picture holds no readable pairing QR code."""


def _make(uri: str) -> segno.QRCode:
    return segno.make(uri, error="m", micro=False, boost_error=False)


def qr_png(uri: str, *, scale: int = PNG_SCALE) -> bytes:
    """The QR code of ``uri`` as PNG bytes."""
    buffer = io.BytesIO()
    _make(uri).save(buffer, kind="png", scale=scale, border=QUIET_ZONE)
    return buffer.getvalue()


def qr_text(uri: str) -> str:
    """The QR code of ``uri`` drawn with block characters, for a terminal.

    Two rows of modules per line; light on dark terminals reads fine with most phone
    cameras, and the border is wide enough to be found.
    """
    buffer = io.StringIO()
    _make(uri).terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue()


def decode_qr_image(picture: bytes | Path) -> str:
    """The text of the QR code in a picture (a file or its bytes).

    Raises:
        QrImageError: the picture cannot be read, or holds no QR code, or several.
    """
    try:
        import zxingcpp
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - both are installed with the project
        raise QrImageError("reading QR pictures needs the zxing-cpp and pillow packages") from None
    try:
        data = picture.read_bytes() if isinstance(picture, Path) else picture
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            results = zxingcpp.read_barcodes(image.convert("L"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise QrImageError(f"cannot read the picture: {exc}") from None
    texts = {result.text for result in results if result.format == zxingcpp.BarcodeFormat.QRCode}
    if not texts:
        raise QrImageError("no QR code was found in the picture")
    if len(texts) > 1:
        raise QrImageError("the picture holds more than one QR code")
    return texts.pop()
