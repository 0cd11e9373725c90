"""Analyst exports of call records: one selection, three formats, safe to open in a spreadsheet.

The admin (`admin.py`), the reporting API (`api.py`) and the `export_calls` command all go
through `jobs.py`; `forms.py` reads the filters, `selectors.py` selects, `sheet.py` makes the
columns and cells, `writers.py` writes the files, `reports.py` counts the funnel.

- `CallRecordFilterForm` reads a selection (period, vendors, states, outcomes, search) from
  query parameters or command options; `call_record_select` turns it into a queryset.
- Every vendor tracking key in the selection becomes its own column, after the record's own
  fields, in sorted order; the keys are collected by the database, not by loading the rows.
- CSV and JSON Lines stream: rows are read through a server-side cursor (PostgreSQL) in chunks
  and written out as they come, so memory does not grow with the row count.
- XLSX is written by a background job in XlsxWriter's constant-memory mode.
- CSV and XLSX cells that a spreadsheet would read as a formula are neutralized; JSON Lines
  carries the tracking data verbatim.
- Every export leaves a `CallExport` row: who, when, which filters, how many rows.
"""
