from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from glabella.accounts.decorators import signed_in
from glabella.accounts.forms import LoginForm
from glabella.accounts.middleware import SESSION_CLINIC_KEY
from glabella.accounts.models import Membership


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


@require_POST
@signed_in
def switch_clinic(request: HttpRequest, clinic_id: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership, user=request.user, clinic_id=clinic_id, is_active=True
    )
    request.session[SESSION_CLINIC_KEY] = membership.clinic_id
    messages.success(request, f"You are now working at {membership.clinic.name}.")
    return redirect("web:dashboard")
