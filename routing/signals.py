"""Routing's events that apps above it follow without routing knowing them (calls imports
routing, never the reverse)."""

from django.dispatch import Signal

# A live reservation was released early (staff, or its agent going offline), inside the
# transaction that released it. Arguments: reservation_id, now.
reservation_released = Signal()
