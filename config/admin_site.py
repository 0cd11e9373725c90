"""The staff admin: only superusers and members of a role group get in."""

from django.contrib import admin

# Made by a migration in calls (the app that sees every model), which lists what each may do.
OPERATIONS = "Operations"
ANALYSTS = "Analysts"
STAFF_ROLES = (OPERATIONS, ANALYSTS)


def user_has_staff_role(user) -> bool:
    if not (user.is_active and user.is_staff):
        return False
    return user.is_superuser or user.groups.filter(name__in=STAFF_ROLES).exists()


class StaffAdminSite(admin.AdminSite):
    site_header = "Call routing administration"
    site_title = "Call routing admin"
    index_title = "Operations"

    def has_permission(self, request) -> bool:
        # A staff flag alone is not enough: a login without a role sees nothing of the admin.
        return user_has_staff_role(request.user)
