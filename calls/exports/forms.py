"""The selection every export path accepts: filters read from query parameters or options."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django import forms
from django.http import QueryDict
from django.utils.dateparse import parse_datetime

from calls.models import CallRecord
from config.errors import ApplicationError
from routing.models import UnavailableReason
from vendors.models import Vendor
from vendors.states import STATE_CHOICES

# Sandbox keys' pings (CallRecord.sandbox) are test traffic: left out unless asked for.
SANDBOX_EXCLUDE, SANDBOX_INCLUDE, SANDBOX_ONLY = "exclude", "include", "only"
SANDBOX_CHOICES = [
    (SANDBOX_EXCLUDE, "Live traffic only"),
    (SANDBOX_INCLUDE, "Live and sandbox traffic"),
    (SANDBOX_ONLY, "Sandbox traffic only"),
]


class InvalidFilters(ApplicationError):
    status = 400

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        first = next(iter(errors.values()), ["Invalid filters."])
        super().__init__(first[0])


@dataclass(frozen=True)
class CallRecordFilters:
    """Which call records: received in [since, until), of these vendors, states and outcomes;
    sandbox keys' records left out, included or alone (`sandbox`)."""

    since: datetime | None = None
    until: datetime | None = None
    vendor_ids: tuple[int, ...] = ()
    states: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    search: str = ""
    sandbox: str = SANDBOX_EXCLUDE

    def as_json(self) -> dict:
        """For the audit record and the background job: only what is set."""
        data: dict = {}
        if self.since:
            data["since"] = self.since.astimezone(UTC).isoformat()
        if self.until:
            data["until"] = self.until.astimezone(UTC).isoformat()
        if self.vendor_ids:
            data["vendor"] = list(self.vendor_ids)
        if self.states:
            data["state"] = list(self.states)
        if self.outcomes:
            data["outcome"] = list(self.outcomes)
        if self.reasons:
            data["reason"] = list(self.reasons)
        if self.search:
            data["q"] = self.search
        if self.sandbox != SANDBOX_EXCLUDE:
            data["sandbox"] = self.sandbox
        return data

    @classmethod
    def from_json(cls, data: dict) -> CallRecordFilters:
        def moment(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None

        return cls(
            since=moment("since"),
            until=moment("until"),
            vendor_ids=tuple(data.get("vendor", ())),
            states=tuple(data.get("state", ())),
            outcomes=tuple(data.get("outcome", ())),
            reasons=tuple(data.get("reason", ())),
            search=data.get("q", ""),
            sandbox=data.get("sandbox", SANDBOX_EXCLUDE),
        )


def _is_bare_date(value: object) -> bool:
    if isinstance(value, datetime):
        return False
    if isinstance(value, date):
        return True
    try:
        date.fromisoformat(str(value).strip())
    except ValueError:
        return False
    return True


class _MomentField(forms.DateTimeField):
    """ISO-8601 date or date-time, UTC unless the value says otherwise.

    Only ISO-8601: Django's other input formats (09/30/2025) would be read as the start of a
    day where the same date in ISO means the whole of it as the end of a period.
    """

    default_error_messages = {
        "invalid": "Enter an ISO-8601 date or date-time, like 2025-09-30 or 2025-09-30T14:00:00Z.",
        "out_of_range": (
            "This date is out of range; use one between 0001-01-01 and 9999-12-30, UTC."
        ),
    }

    def __init__(self, *, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            try:
                iso = parse_datetime(value.strip())
            except ValueError:  # shaped like ISO-8601, but no such day or hour
                iso = None
            if iso is None:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            # A bare date as the end of a period means "up to the end of that day".
            if self.end_of_day and _is_bare_date(value):
                moment += timedelta(days=1)
            # The database and the audit row hold UTC: the moment must exist there too.
            moment.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(
                self.error_messages["out_of_range"], code="out_of_range"
            ) from None
        return moment


class CallRecordFilterForm(forms.Form):
    """The filters every export path accepts. Lists may repeat the parameter or use commas."""

    since = _MomentField(
        required=False, help_text="From this moment (inclusive). A date means its midnight, UTC."
    )
    until = _MomentField(
        required=False,
        end_of_day=True,
        help_text="Before this moment (exclusive). A date means the end of that day, UTC.",
    )
    vendor = forms.ModelMultipleChoiceField(
        queryset=Vendor.objects.order_by("name"), required=False, help_text="Vendor ids."
    )
    state = forms.MultipleChoiceField(choices=STATE_CHOICES, required=False)
    outcome = forms.MultipleChoiceField(choices=CallRecord.Outcome.choices, required=False)
    reason = forms.MultipleChoiceField(
        choices=UnavailableReason.choices,
        required=False,
        help_text="Why no agent was held: no_agent, or the policy that refused the ping.",
    )
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        help_text=(
            "An exact request id, phone number, lead_id, TrustedForm certificate URL or Jornaya "
            "LeadiD (as the call-record list)."
        ),
    )
    sandbox = forms.ChoiceField(
        choices=SANDBOX_CHOICES,
        required=False,
        label="Sandbox traffic",
        help_text=("Pings made with sandbox keys: exclude (the default), include, or only them."),
    )

    LIST_FIELDS = ("vendor", "state", "outcome", "reason")

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(_split_lists(data) if data is not None else None, *args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "The end of the period must come after its start.")
        return cleaned

    def filters(self) -> CallRecordFilters:
        data = self.cleaned_data
        return CallRecordFilters(
            since=data.get("since"),
            until=data.get("until"),
            vendor_ids=tuple(sorted(vendor.pk for vendor in data.get("vendor") or ())),
            states=tuple(sorted(data.get("state") or ())),
            outcomes=tuple(sorted(data.get("outcome") or ())),
            reasons=tuple(sorted(data.get("reason") or ())),
            search=(data.get("q") or "").strip(),
            sandbox=data.get("sandbox") or SANDBOX_EXCLUDE,
        )


def _split_lists(data) -> QueryDict:
    """`state=AZ,ca&state=TX` and `state=AZ&state=CA&state=TX` mean the same."""
    result = QueryDict(mutable=True)
    for key in data:
        values = data.getlist(key) if hasattr(data, "getlist") else _as_list(data[key])
        if key in CallRecordFilterForm.LIST_FIELDS:
            values = [part.strip() for value in values for part in str(value).split(",")]
            values = [value for value in values if value]
            if key == "state":
                values = [value.upper() for value in values]
            elif key in ("outcome", "reason"):
                values = [value.lower().replace(" ", "_") for value in values]
        elif key == "sandbox":
            values = [str(value).strip().lower() for value in values]
        result.setlist(key, values)
    return result


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def call_record_filters_parse(*, data) -> CallRecordFilters:
    """Filters from query parameters (or a dict); `InvalidFilters` lists what is wrong."""
    form = CallRecordFilterForm(data)
    if not form.is_valid():
        raise InvalidFilters(
            {name: [str(message) for message in errors] for name, errors in form.errors.items()}
        )
    return form.filters()
