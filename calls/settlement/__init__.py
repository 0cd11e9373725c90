"""Settling calls with vendors: which call records are billable, what each pays, and the
statements and scorecards staff read."""
