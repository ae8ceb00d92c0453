"""A password "validator" whose only job is its ``password_changed`` hook.

Django calls ``password_changed(password, user)`` on every configured validator after any
password change is saved (``User.save()`` after ``set_password``): the account page, the admin's
password form, ``manage.py changepassword`` and a password reset alike. This hook ends the
user's other sessions; the session that made the change (if it is the user's own) is kept,
since Django's ``update_session_auth_hash`` keeps it logged in.
"""

from __future__ import annotations

from typing import Any


class EndSessionsOnPasswordChange:
    def validate(self, password: str, user: Any = None) -> None:
        return None

    def password_changed(self, password: str, user: Any = None) -> None:
        if user is None or user.pk is None:
            return
        from accounts.services import password_changed

        password_changed(user=user)

    def get_help_text(self) -> str:
        return ""
