"""Admin pages that show a customer's personal data write the personal-data access log.

``AccessLoggedAdminMixin`` on a ``ModelAdmin``: rendering an object's page (the change or
view-only form, GET or a redisplay after a form error) records ``access_log_action`` for the
customer ``access_log_customer_id(obj)`` names, from the client's real address. Lists are not
logged (they show what the user's queues show anyway); opening one record is.
"""

from __future__ import annotations

from typing import Any

from compliance.models import AccessLogEntry
from compliance.services.access_log import access_log_record
from ispsupport.security import client_ip


class AccessLoggedAdminMixin:
    access_log_action: str = AccessLogEntry.Action.VIEW_CUSTOMER
    access_log_object_type: str = ""

    def access_log_customer_id(self, obj: Any) -> int | None:
        """The data subject the page shows (None when the object is not tied to one)."""
        return None

    def access_log_team_id(self, obj: Any) -> int | None:
        """The team whose supervisors may read the row (see the access-log admin)."""
        return None

    def render_change_form(
        self, request: Any, context: Any, add: bool = False, change: bool = False, **kwargs: Any
    ) -> Any:
        obj = kwargs.get("obj")
        if not add and obj is not None:
            access_log_record(
                user=request.user,
                customer_id=self.access_log_customer_id(obj),
                action=self.access_log_action,
                ip=client_ip(request) or None,
                object_type=self.access_log_object_type or obj._meta.model_name,
                object_id=obj.pk,
                team_id=self.access_log_team_id(obj),
            )
        return super().render_change_form(request, context, add=add, change=change, **kwargs)
