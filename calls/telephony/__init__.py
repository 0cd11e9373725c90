"""Calls arriving on our numbers (the carrier's webhooks) and agent presence."""
