"""Admin form pieces: the grid of state checkboxes vendors and agents share."""

from django import forms

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
