from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("accounts/", views.account_home, name="home"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/2fa/setup/", views.otp_setup, name="otp_setup"),
    path("accounts/2fa/verify/", views.otp_verify, name="otp_verify"),
    path("accounts/2fa/backup-codes/", views.backup_codes_regenerate, name="backup_codes"),
    path("accounts/sessions/", views.session_list, name="sessions"),
    path("accounts/sessions/<int:pk>/end/", views.session_end, name="session_end"),
    path("accounts/sessions/end-others/", views.session_end_others, name="sessions_end_others"),
    path("accounts/tokens/", views.token_list, name="tokens"),
    path("accounts/tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
]
