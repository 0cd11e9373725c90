"""Analyst exports of call records: filters, selection, sheet, writers, jobs, admin, API."""
