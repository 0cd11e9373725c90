"""The operator's holidays filled from the US federal calendar (the `holidays` library), so
nobody keeps a table of dates by hand. Staff delete any the operation works through."""

from django.db import transaction

from vendors.models import Holiday

# Years offered: the calendar's rules are known well ahead; a typo of a century is refused.
FEDERAL_YEARS = range(2000, 2101)


class FederalYearOutOfRange(ValueError):
    pass


@transaction.atomic
def operator_holidays_add_federal(*, year: int) -> tuple[list[Holiday], int]:
    """Add the year's US federal holidays, with the weekdays they are observed on, to the
    operator's holidays (closed for every vendor). A date already listed is left as it is.
    Returns the holidays added and how many dates were there already."""
    import holidays

    if year not in FEDERAL_YEARS:
        raise FederalYearOutOfRange(
            f"Choose a year from {FEDERAL_YEARS.start} to {FEDERAL_YEARS.stop - 1}."
        )
    calendar = holidays.country_holidays("US", years=year)
    listed = set(
        Holiday.objects.filter(vendor__isnull=True, date__in=list(calendar)).values_list(
            "date", flat=True
        )
    )
    added = [
        Holiday.objects.create(vendor=None, date=day, name=name[:100])
        for day, name in sorted(calendar.items())
        if day not in listed
    ]
    return added, len(listed)
