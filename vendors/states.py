"""The USPS codes a vendor may be authorized for and an agent licensed in.

They live here, in the lowest app, because vendors' authorized states are their first user;
routing builds its area-code table on them.
"""

_NAMES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa",
    "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi",
    "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire",
    "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming", "DC": "District of Columbia",
    "PR": "Puerto Rico", "VI": "U.S. Virgin Islands", "GU": "Guam", "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
}  # fmt: skip

# In code order, for choices and grids.
STATES: dict[str, str] = dict(sorted(_NAMES.items()))

STATE_CHOICES: list[tuple[str, str]] = [(code, f"{code} - {name}") for code, name in STATES.items()]


class InvalidStateCode(ValueError):
    pass


def normalize_state_code(value: object) -> str | None:
    """A two-letter USPS code in any letter case, upper-cased; None stays None."""
    if value is None:
        return None
    # isascii() first: str.upper() maps some non-ASCII letters onto ASCII ones.
    if isinstance(value, str) and len(value) == 2 and value.isascii():
        code = value.upper()
        if code in STATES:
            return code
    raise InvalidStateCode(value)
