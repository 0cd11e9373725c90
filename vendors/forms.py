"""Admin form pieces: the grid of state checkboxes vendors and agents share, and the forms of
the ping policies staff set per vendor and for the operator."""

from datetime import time

from django import forms

from vendors.models import MIDNIGHT, Holiday, OpeningHours, VendorCap, Weekday
from vendors.states import STATE_CHOICES


class StateGridWidget(forms.CheckboxSelectMultiple):
    template_name = "vendors/widgets/state_grid.html"

    class Media:
        css = {"all": ["vendors/state_grid.css"]}


class StateMultipleChoiceField(forms.MultipleChoiceField):
    """Every USPS code of the contract as a checkbox; cleans to a sorted list of codes."""

    widget = StateGridWidget

    def __init__(self, **kwargs):
        kwargs.setdefault("choices", STATE_CHOICES)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, value):
        return sorted(set(super().clean(value)))


# --- Ping policies: the vendor's caps, hours and holidays, and the operator's default ----------
# Each formset checks what a single row cannot: rows that collide with each other. A message
# names the rows, so staff see which to fix.

# Far beyond any window an operator keeps; a typo of a few more digits is refused.
DUPLICATE_WINDOW_MOST_DAYS = 3650


def policy_window_days_clean(days: int | None) -> int | None:
    """The duplicate window: empty (off) or 1 to DUPLICATE_WINDOW_MOST_DAYS days."""
    if days is None:
        return None
    if days < 1:
        raise forms.ValidationError(
            "Give at least 1 day, or leave the field empty to turn the duplicate check off."
        )
    if days > DUPLICATE_WINDOW_MOST_DAYS:
        raise forms.ValidationError(f"Give at most {DUPLICATE_WINDOW_MOST_DAYS} days.")
    return days


def _live_forms(formset) -> list:
    """The formset's forms that will be saved: valid, not deleted, not left empty."""
    live = []
    for form in formset.forms:
        if not form.is_valid() or not (form.has_changed() or form.instance.pk):
            continue
        if formset.can_delete and formset._should_delete_form(form):
            continue
        live.append(form)
    return live


class VendorCapForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["state"].choices = [("", "All states"), *STATE_CHOICES]

    class Meta:
        model = VendorCap
        fields = ["state", "most_at_once", "most_per_hour", "most_per_day"]
        labels = {
            "most_at_once": "Most at once",
            "most_per_hour": "Most per hour",
            "most_per_day": "Most per day",
        }

    def clean(self):
        cleaned = super().clean()
        limits = [cleaned.get(name) for name in ("most_at_once", "most_per_hour", "most_per_day")]
        if all(limit is None for limit in limits) and not self.errors:
            raise forms.ValidationError(
                "Give at least one limit (at once, per hour or per day), or delete the row."
            )
        return cleaned


class VendorCapFormSet(forms.BaseInlineFormSet):
    def validate_unique(self):
        # One row a state: clean() says so naming the state, instead of Django's "duplicate data".
        pass

    def clean(self):
        super().clean()
        seen = set()
        problems = []
        vendor = self.instance
        for form in _live_forms(self):
            state = form.cleaned_data.get("state") or ""
            if state in seen:
                problems.append(
                    f"Two cap rows for {state or 'all states'}: keep one row per state (and one "
                    "for all states)."
                )
            seen.add(state)
            if state and not vendor.is_authorized_for(state):
                problems.append(
                    f"The vendor is not authorized for {state}: a cap narrowed to it would never "
                    "apply. Authorize the state or choose another."
                )
        if problems:
            raise forms.ValidationError(problems)


class OpeningHoursForm(forms.ModelForm):
    class Meta:
        model = OpeningHours
        fields = ["weekday", "opens", "closes"]
        widgets = {
            "opens": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "closes": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def clean(self):
        cleaned = super().clean()
        opens, closes = cleaned.get("opens"), cleaned.get("closes")
        if opens is not None and closes is not None and closes != MIDNIGHT and closes <= opens:
            # On the field: the model's own check of the same rule then stays silent.
            self.add_error(
                "closes",
                f"Closes at {closes:%H:%M}, not after it opens at {opens:%H:%M}. For a period "
                "past midnight, add two rows: until 00:00, then from 00:00 the next day.",
            )
        return cleaned


def _minutes(moment, *, end: bool = False) -> int:
    minutes = moment.hour * 60 + moment.minute
    return 24 * 60 if end and minutes == 0 else minutes


def opening_hours_overlaps(periods: list[tuple[int, time, time]]) -> list[str]:
    """Messages naming the periods of one weekday that overlap (weekday, opens, closes)."""
    problems = []
    ordered = sorted(periods, key=lambda period: (period[0], _minutes(period[1])))
    latest = None  # of the weekday's periods so far, the one that closes last
    for period in ordered:
        if latest and latest[0] == period[0]:
            if _minutes(period[1]) < _minutes(latest[2], end=True):
                day = Weekday(period[0]).label
                problems.append(
                    f"{day} {_span(latest)} overlaps {day} {_span(period)}: "
                    "make them one period or move one."
                )
            if _minutes(period[2], end=True) <= _minutes(latest[2], end=True):
                continue
        latest = period
    return problems


def _span(period: tuple[int, time, time]) -> str:
    return f"{period[1]:%H:%M} to {period[2]:%H:%M}"


class _OpeningHoursChecks(forms.BaseModelFormSet):
    """No two periods of a weekday overlap: for a vendor's rows and for the operator's."""

    def clean(self):
        super().clean()
        periods = [
            (form.cleaned_data["weekday"], form.cleaned_data["opens"], form.cleaned_data["closes"])
            for form in _live_forms(self)
            if {"weekday", "opens", "closes"} <= set(form.cleaned_data)
        ]
        if problems := opening_hours_overlaps(periods):
            raise forms.ValidationError(problems)


class OpeningHoursFormSet(_OpeningHoursChecks, forms.BaseInlineFormSet):
    pass


class OperatorOpeningHoursFormSet(_OpeningHoursChecks, forms.BaseModelFormSet):
    pass


class HolidayForm(forms.ModelForm):
    class Meta:
        model = Holiday
        fields = ["date", "name"]
        widgets = {"date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def _get_validation_exclusions(self):
        # One holiday a date: the formset says so naming the date, where the model's constraint
        # would name itself. A row another editor saves meanwhile is the database's to refuse.
        return {*super()._get_validation_exclusions(), "date"}


class _HolidayChecks(forms.BaseModelFormSet):
    """One row a date: for a vendor's holidays and for the operator's."""

    def clean(self):
        super().clean()
        seen = set()
        problems = []
        for form in _live_forms(self):
            day = form.cleaned_data.get("date")
            if day is None:
                continue
            if day in seen:
                problems.append(f"{day:%Y-%m-%d} is listed twice: one row a day.")
            seen.add(day)
        if problems:
            raise forms.ValidationError(problems)


class HolidayFormSet(_HolidayChecks, forms.BaseInlineFormSet):
    pass


class OperatorHolidayFormSet(_HolidayChecks, forms.BaseModelFormSet):
    pass
