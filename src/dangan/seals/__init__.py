"""Seal appearances: drawn round official seals, vetted seal uploads, cross-page slices."""

from dangan.seals.appearance import (
    DEFAULT_CJK_FONT,
    SEAL_RED,
    accept_seal_image,
    render_round_seal,
    slice_for_cross_page,
)
from dangan.seals.errors import (
    SealAppearanceError,
    SealFontUnavailable,
    SealImageRejected,
    SealImageTooLarge,
)

__all__ = [
    "DEFAULT_CJK_FONT",
    "SEAL_RED",
    "SealAppearanceError",
    "SealFontUnavailable",
    "SealImageRejected",
    "SealImageTooLarge",
    "accept_seal_image",
    "render_round_seal",
    "slice_for_cross_page",
]
