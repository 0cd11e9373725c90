"""How the admin writes dates and times: one way everywhere, with the zone (settings.TIME_ZONE).

Django's English formats ("Dec. 4, 2026, 2:03 p.m.") name no zone; staff compare these times with
logs and vendors' tickets.
"""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s T"
TIME_FORMAT = "H:i:s T"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
