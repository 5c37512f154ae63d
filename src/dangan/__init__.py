"""dangan: paperless e-document and electronic-archive service."""

__version__ = "0.1.0"
