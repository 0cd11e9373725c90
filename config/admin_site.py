"""The staff admin: only superusers and members of a role group get in.

A role is what lets staff in: Django's `is_staff` flag is neither needed nor enough.
"""

from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.utils.functional import cached_property

# Made by a migration in calls (the app that sees every model), which lists what each may do.
OPERATIONS = "Operations"
ANALYSTS = "Analysts"
STAFF_ROLES = (OPERATIONS, ANALYSTS)
# The largest OFFSET PostgreSQL and SQLite take: a signed 64-bit integer.
MAX_OFFSET = 2**63 - 1


def user_has_staff_role(user) -> bool:
    if not user.is_active:
        return False
    return user.is_superuser or user.groups.filter(name__in=STAFF_ROLES).exists()


class StaffLoginForm(AdminAuthenticationForm):
    """The admin's login form, letting in by role instead of by the `is_staff` flag."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "no_role": (
            "%(username)s has no staff role: the admin is for members of Operations or "
            "Analysts. Ask an administrator to add this login to one."
        ),
    }

    def confirm_login_allowed(self, user) -> None:
        # Called only once the password is right: someone guessing passwords learns nothing.
        AuthenticationForm.confirm_login_allowed(self, user)  # refuses an inactive user
        if not user_has_staff_role(user):
            raise ValidationError(
                self.error_messages["no_role"],
                code="no_role",
                params={"username": user.get_username()},
            )


class StaffAdminSite(admin.AdminSite):
    site_header = "Call routing administration"
    site_title = "Call routing admin"
    index_title = "Operations"
    login_form = StaffLoginForm
    # "View site": the vendor docs, the one public page staff point vendors to.
    site_url = "/docs/"

    # The home page and its URLs, put here by an app further down (calls.floor): config imports
    # none of ours.
    home_view: Any = None
    home_urls: Any = None

    def home_install(self, *, view, urls) -> None:
        """`view(request, site, extra_context)` answers the index; `urls(site)` its own paths."""
        self.home_view, self.home_urls = view, urls

    def has_permission(self, request) -> bool:
        # A role, not the staff flag: a login without a role sees nothing of the admin.
        return user_has_staff_role(request.user)

    def index(self, request, extra_context=None):
        if self.home_view is None:
            return super().index(request, extra_context)
        return self.home_view(request, self, extra_context)

    def get_urls(self):
        ours = self.home_urls(self) if self.home_urls is not None else []
        return ours + super().get_urls()


class NoCountPaginator(Paginator):
    """Counts no further than one row past the page asked for, never the whole table.

    The count it reports is enough for the admin to offer the next page and no more, so a
    page costs the same on a million rows as on a hundred.
    """

    object_list: QuerySet[Any]  # the admin's changelist query

    def __init__(self, object_list, per_page, *, page_number=1, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.page_number = page_number

    @cached_property
    def count(self) -> int:
        offset = (self.page_number - 1) * self.per_page
        ahead = len(self.object_list[offset : offset + self.per_page + 1].values_list("pk"))
        return offset + ahead

    @cached_property
    def num_pages(self) -> int:
        # As Django's, in integers: its float division rounds the counts a page number past 2**53
        # gives, and can take a page past the end for the last one.
        if self.count == 0 and not self.allow_empty_first_page:
            return 0
        return -(-max(1, self.count - self.orphans) // self.per_page)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows staff read and nobody edits here: records of what happened."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class NoCountAdminMixin:
    """For tables that grow without bound (call records, reservations): nothing counts them.

    Pair with a pagination.html for the model that shows newer/older links and no total.
    """

    paginator: ClassVar[type[NoCountPaginator]] = NoCountPaginator  # ModelAdmin has a ClassVar
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice would scan the table
    list_max_show_all = 0

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        try:
            page_number = max(1, int(request.GET.get("p", 1)))
        except ValueError:
            page_number = 1
        if page_number * per_page + 1 > MAX_OFFSET:
            # The page's query would reach past the largest OFFSET the database takes (and past
            # the end of any table): answered as Django answers a page past the end, back to the
            # list with ?e=1, instead of an error from the database.
            raise IncorrectLookupParameters(f"No page {page_number}.")
        return self.paginator(
            queryset,
            per_page,
            orphans=orphans,
            allow_empty_first_page=allow_empty_first_page,
            page_number=page_number,
        )


class StatesInUseFilter(admin.SimpleListFilter):
    """A state filter that lists the states in use, not all 56 codes. Subclasses say which are in
    use (`states_in_use`); the parameter is the field filter's, so links and exports keep working.
    """

    title = "state"
    parameter_name = "state__exact"
    field_path = "state"

    def states_in_use(self, request, model_admin) -> list[str]:
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return [(state, state) for state in sorted(set(self.states_in_use(request, model_admin)))]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field_path: self.value()})
        return queryset


def simple_form_response(
    model_admin, request, *, form, title: str, submit_label: str, intro: str = ""
) -> TemplateResponse:
    """A page of the admin's own look holding one form (admin/simple_form.html): the admin's
    own pages beside a model's (add many, revoke, remove with a reason...)."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        "form": form,
        "submit_label": submit_label,
        "intro": intro,
    }
    return TemplateResponse(request, "admin/simple_form.html", context)
