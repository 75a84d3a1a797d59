"""Checking a student's workbook: every step table, cell by cell, and the slip named.

``fastbp.audit(path)`` (this package's ``api.audit``) and the ``fastbp audit`` command. Only
``workbook.py`` reads files, and it imports openpyxl (the ``xlsx`` extra) when it needs it; the
rest is plain Python floats (``math.exp``), no numpy or numba, so the command starts fast.
"""
