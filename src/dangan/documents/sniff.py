"""Media type detection from content, never from the client's Content-Type or filename."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO

#: How many leading bytes :func:`sniff_media_type` needs at most.
SNIFF_BYTES = 8192


def sniff_media_type(head: bytes, *, complete: bool) -> str | None:
    """The media type of content starting with ``head``, or ``None`` if unrecognised.

    ``complete`` says ``head`` is the whole content (small files), which lets JSON be
    recognised by parsing rather than guessed.
    """
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "image/tiff"
    if head.startswith(b"PK\x03\x04"):
        return "application/ofd" if _looks_like_ofd(head) else None
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<?xml") or (text.startswith(b"<") and text[1:2].isalpha()):
        return "application/xml"
    if text[:1] in (b"{", b"["):
        if not complete:
            return "application/json"
        try:
            json.loads(head)
        except ValueError:
            return None
        return "application/json"
    return None


def _looks_like_ofd(head: bytes) -> bool:
    """OFD (GB/T 33190) is a ZIP package whose entry point is ``OFD.xml`` at the root.

    The first local file header usually names it; otherwise, when the head holds the whole
    package, the central directory is read.
    """
    name_len = int.from_bytes(head[26:28], "little")
    first_name = head[30 : 30 + name_len]
    if first_name == b"OFD.xml":
        return True
    try:
        with zipfile.ZipFile(BytesIO(head)) as package:
            return "OFD.xml" in package.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False
