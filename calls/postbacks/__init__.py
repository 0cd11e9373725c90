"""Postbacks: telling a vendor, over HTTPS, what became of its transfers.

Its own app (label `postbacks`), so its tables and migrations stand apart from the call records'.
"""
