"""Private: the PDF/A-2b parts of a licence PDF (ISO 19005-2:2011) that reportlab lacks.

reportlab 5.1 embeds TrueType subsets and writes a trailer ID, but has no API for an
OutputIntent, writes no XMP, and puts ``endstream`` straight after a stream's data. This
module adds the sRGB OutputIntent (§6.2.3), an XMP packet that names the file PDF/A-2b
(§6.6.4) and matches the Info dictionary (§6.6.2.3.1), and, after reportlab has written
the file, the end-of-line marker before every ``endstream`` (§6.1.7.1), with the
cross-reference table moved to match.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from PIL import ImageCms
from reportlab.pdfbase import pdfdoc
from reportlab.pdfgen.canvas import Canvas


@dataclass(frozen=True)
class DocumentInfo:
    """The document metadata, written both to the Info dictionary and to XMP."""

    title: str
    """Info /Title and dc:title."""
    author: str
    """Info /Author and dc:creator."""
    subject: str
    """Info /Subject and dc:description."""
    keywords: str
    """Info /Keywords and pdf:Keywords."""
    creator: str
    """Info /Creator and xmp:CreatorTool: the application that made the content."""
    producer: str
    """Info /Producer and pdf:Producer."""
    created_pdf: str
    """Info /CreationDate and /ModDate, a PDF date (ISO 32000-1 §7.9.4)."""
    created_xmp: str
    """The same instant for xmp:CreateDate and xmp:ModifyDate (ISO 8601)."""


class _UnfilteredStream(pdfdoc.PDFStream):
    """A stream written as is, whatever the document's default filters (§6.6.2.1 wants
    the metadata stream unfiltered), with the end-of-line marker before ``endstream``."""

    def format(self, document: pdfdoc.PDFDocument) -> bytes:
        d = pdfdoc.PDFDictionary(dict(self.dictionary.dict, Length=len(self.content)))
        return pdfdoc.format(d, document) + b"\nstream\n" + self.content + b"\nendstream\n"


def describe(canvas: Canvas, info: DocumentInfo) -> None:
    """Set the Info dictionary, the XMP packet and the sRGB OutputIntent, consistently."""
    canvas.setTitle(info.title)
    canvas.setAuthor(info.author)
    canvas.setSubject(info.subject)
    canvas.setKeywords(info.keywords)
    canvas.setCreator(info.creator)
    canvas.setProducer(info.producer)
    canvas.setDateFormatter(lambda *_: info.created_pdf)  # not the wall clock
    canvas.setCatalogEntry(
        "Metadata",
        _UnfilteredStream(
            pdfdoc.PDFDictionary(
                {"Type": pdfdoc.PDFName("Metadata"), "Subtype": pdfdoc.PDFName("XML")}
            ),
            content=_xmp_packet(info),
        ),
    )
    _add_output_intent(canvas)


def _add_output_intent(canvas: Canvas) -> None:
    """§6.2.3: a PDF/A OutputIntent whose profile gives DeviceRGB its meaning.

    reportlab has no API for OutputIntents and its catalog writes only the keys it knows,
    so the key is added to this one catalog's list of keys to write.
    """
    doc = canvas._doc
    profile = pdfdoc.PDFStream(
        pdfdoc.PDFDictionary({"N": 3, "Alternate": pdfdoc.PDFName("DeviceRGB")}),
        content=srgb_profile(),
        filters=[pdfdoc.PDFZCompress],
    )
    intent = pdfdoc.PDFDictionary(
        {
            "Type": pdfdoc.PDFName("OutputIntent"),
            "S": pdfdoc.PDFName("GTS_PDFA1"),  # the subtype PDF/A-1, -2 and -3 all use
            "OutputConditionIdentifier": pdfdoc.PDFString("sRGB IEC61966-2.1"),
            "RegistryName": pdfdoc.PDFString("http://www.color.org"),
            "Info": pdfdoc.PDFString("sRGB IEC61966-2.1"),
            "DestOutputProfile": doc.Reference(profile),
        }
    )
    catalog = doc.Catalog
    catalog.__NoDefault__ = [*type(catalog).__NoDefault__, "OutputIntents"]
    catalog.OutputIntents = pdfdoc.PDFArray([intent])


@functools.cache
def srgb_profile() -> bytes:
    """LittleCMS's built-in sRGB profile (ICC v4), with a fixed creation date.

    The ICC header (ICC.1:2010 §7.2.1) carries the time the profile was built, bytes
    24-35; left alone it would make every process write different bytes.
    """
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[24:36] = bytes.fromhex("07d0 0001 0001 0000 0000 0000")  # 2000-01-01 00:00:00
    if any(icc[84:100]):  # §7.2.18 profile ID: MD5 with flags, intent and ID zeroed
        scratch = bytearray(icc)
        scratch[44:48] = scratch[64:68] = bytes(4)
        scratch[84:100] = bytes(16)
        icc[84:100] = hashlib.md5(scratch, usedforsecurity=False).digest()
    return bytes(icc)


def _xmp_packet(info: DocumentInfo) -> bytes:
    """XMP (ISO 16684-1) with the pdfaid schema and every Info twin (§6.6.2.3.1)."""
    t, a, s, k, c, p = (
        escape(v)
        for v in (info.title, info.author, info.subject, info.keywords, info.creator, info.producer)
    )
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
   <pdfaid:part>2</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
   <dc:format>application/pdf</dc:format>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{t}</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>{a}</rdf:li></rdf:Seq></dc:creator>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{s}</rdf:li></rdf:Alt></dc:description>
   <pdf:Keywords>{k}</pdf:Keywords>
   <pdf:Producer>{p}</pdf:Producer>
   <xmp:CreatorTool>{c}</xmp:CreatorTool>
   <xmp:CreateDate>{info.created_xmp}</xmp:CreateDate>
   <xmp:ModifyDate>{info.created_xmp}</xmp:ModifyDate>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>""".encode()


_STREAM_END = b"endstream\nendobj\n"
_XREF_HEAD = re.compile(rb"xref\n0 (\d+)\n")


def end_streams_with_eol(pdf: bytes) -> bytes:
    """``pdf`` (as reportlab writes it) with an EOL before each ``endstream`` (§6.1.7.1).

    Objects are found through the cross-reference table, never by searching stream data:
    each object runs from its offset to the next one, and a stream object ends with
    ``endstream`` and ``endobj``. /Length stays right, as it excludes that EOL.
    """
    xref_at = int(pdf[pdf.rindex(b"startxref") + 9 :].split()[0])
    head = _XREF_HEAD.match(pdf, xref_at)
    if head is None:
        raise ValueError("no classic cross-reference table where startxref points")
    count, table_at = int(head.group(1)), head.end()
    offsets = [int(pdf[table_at + 20 * k : table_at + 20 * k + 10]) for k in range(1, count)]
    bounds = [*offsets, xref_at]
    if bounds != sorted(bounds):
        raise ValueError("objects are not in file order")
    parts, shift, moved = [pdf[: offsets[0]]], 0, []
    for start, end in itertools.pairwise(bounds):
        chunk = pdf[start:end]
        tail = chunk.rfind(_STREAM_END)
        moved.append(start + shift)
        if tail > 0 and chunk[tail - 1 : tail] not in (b"\n", b"\r"):
            chunk = chunk[:tail] + b"\n" + chunk[tail:]
            shift += 1
        parts.append(chunk)
    table = b"".join(b"%010d 00000 n \n" % offset for offset in moved)
    rest = pdf[table_at + 20 * count :]
    rest = rest[: rest.rindex(b"startxref")] + b"startxref\n%d\n%%%%EOF\n" % (xref_at + shift)
    return b"".join(parts) + head.group(0) + pdf[table_at : table_at + 20] + table + rest
