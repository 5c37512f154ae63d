"""Errors of the seals package.

    DanganError
    └── SealAppearanceError        422 seal_appearance_invalid
        ├── SealImageRejected      422 seal_image_rejected
        │   └── SealImageTooLarge  413 seal_image_too_large
        └── SealFontUnavailable    500 seal_font_unavailable

A seal's text, size or colour that cannot be drawn, and an uploaded seal image that is
not a clean transparent PNG, are client errors. A font file that is missing or damaged is
an operator problem, hence HTTP 500.
"""

from __future__ import annotations

from dangan.errors import DanganError


class SealAppearanceError(DanganError):
    """The seal appearance cannot be made from the given text, size, colour or image."""

    code = "seal_appearance_invalid"
    title = "The seal appearance is invalid"
    status = 422


class SealImageRejected(SealAppearanceError):
    """An uploaded seal image is not a usable transparent PNG."""

    code = "seal_image_rejected"
    title = "The seal image is not a usable transparent PNG"


class SealImageTooLarge(SealImageRejected):
    """An uploaded seal image exceeds the size limit in bytes."""

    code = "seal_image_too_large"
    title = "The seal image exceeds the size limit"
    status = 413


class SealFontUnavailable(SealAppearanceError):
    """The font file for the seal's text is missing or cannot be read."""

    code = "seal_font_unavailable"
    title = "The seal font cannot be loaded"
    status = 500
