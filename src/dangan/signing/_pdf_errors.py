"""What pyHanko raises, besides ``PdfError``, when a PDF's structure is broken.

Found by fuzzing signing and validation: a damaged PDF is the client's problem, never a
500 (DESIGN.md invariant 6), so callers turn these into their own typed outcome.
"""

from __future__ import annotations

import zlib

from pyhanko.pdf_utils.misc import PdfError

#: Exceptions that mean "this PDF cannot be parsed", in signing and validation alike.
PDF_STRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    PdfError,
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    ArithmeticError,
    AssertionError,
    NotImplementedError,
    RecursionError,
    zlib.error,
)
