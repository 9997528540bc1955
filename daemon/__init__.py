"""Nadir: a DICOM node that turns follow-up studies into tumour-response reports."""

__version__ = "0.1.0"
