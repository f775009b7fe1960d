from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from glabella.accounts import lockout, mfa
from glabella.accounts.actor import Actor, client_ip
from glabella.accounts.decorators import signed_in
from glabella.accounts.forms import LoginForm, TokenForm
from glabella.accounts.middleware import SESSION_CLINIC_KEY
from glabella.accounts.models import ApiToken, Membership
from glabella.accounts.tokens import NewToken, create_token, revoke_token


class LoginView(auth_views.LoginView):
    """The password step. Locked accounts and addresses get 429 and plain words, even with the
    right password; failures count toward the lock (accounts/lockout.py). A member who must
    pass the second step is then sent to it (accounts/mfa_views.py)."""

    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["idle_signed_out"] = self.request.GET.get("idle") == "1"
        context["idle_minutes"] = max(1, settings.GLABELLA_IDLE_SECONDS // 60)
        return context

    def _locked(self, lock: lockout.Lock, email: str) -> HttpResponse:
        form = self.get_form_class()(self.request, initial={"username": email})
        context = self.get_context_data(form=form)
        context["lock_message"] = lock.message()
        response = self.render_to_response(context)
        response.status_code = 429
        response["Retry-After"] = str(lock.seconds_left)
        return response

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        email = str(request.POST.get("username", ""))[:254]
        lock = lockout.check(email, client_ip(request))
        if lock is not None:
            lockout.audit(request, email, lock, refused=True)
            return self._locked(lock, email)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        email = str(form.data.get("username", ""))[:254]
        if email and form.data.get("password"):
            lock = lockout.register_failure(email, client_ip(self.request))
            if lock is not None:
                lockout.audit(self.request, email, lock, refused=False)
                return self._locked(lock, email)
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        auth_login(self.request, user)
        next_url = self.get_success_url()
        if mfa.mfa_required(user):
            # Not signed in for real until the second step: the lock counter is reset then.
            step = "accounts:mfa_verify" if mfa.has_device(user) else "accounts:mfa_setup"
            return redirect(f"{reverse(step)}?{urlencode({'next': next_url})}")
        lockout.register_success(user.email)
        mfa.mark_reauthenticated(self.request.session)
        return redirect(next_url)


class LogoutView(auth_views.LogoutView):
    pass


@never_cache
def still_here(request: HttpRequest) -> HttpResponse:
    """The idle timer's "Stay signed in" (static/accounts/idle.js): a cheap signed-in request
    that pushes the session's expiry forward. 204 while signed in, 401 after it ended."""
    if not request.user.is_authenticated:
        return HttpResponse(status=401)
    return HttpResponse(status=204)


@require_POST
@signed_in
def switch_clinic(request: HttpRequest, clinic_id: int) -> HttpResponse:
    membership = get_object_or_404(
        Membership, user=request.user, clinic_id=clinic_id, is_active=True
    )
    request.session[SESSION_CLINIC_KEY] = membership.clinic_id
    messages.success(request, f"You are now working at {membership.clinic.name}.")
    return redirect("web:dashboard")


# --- the user's settings: memberships and personal API tokens ---------------------------------


def _token_rows(tokens: Iterable[ApiToken], now: datetime) -> list[dict[str, Any]]:
    rows = []
    for t in tokens:
        if t.revoked_at is not None:
            state = "revoked"
        elif t.expires_at is not None and t.expires_at <= now:
            state = "expired"
        else:
            state = "active"
        rows.append({"token": t, "state": state})
    return rows


@signed_in
def settings_page(request: HttpRequest) -> HttpResponse:
    """Memberships, personal API tokens (create: the secret is shown once, on this answer
    only; revoke), and for an owner the organization's other active tokens."""
    actor = Actor.from_request(request)
    memberships = list(
        Membership.objects.filter(user=request.user, organization=actor.organization)
        .select_related("clinic")
        .order_by("clinic__name")
    )
    active = [m for m in memberships if m.is_active]
    form = TokenForm(
        request.POST or None,
        memberships=active,
        current=getattr(request.membership, "pk", None),  # type: ignore[attr-defined]
    )
    new_token: NewToken | None = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            m = form.chosen()
            days = form.cleaned_data["expires"]
            expires_at = None if days == "never" else timezone.now() + timedelta(days=int(days))
            me = Actor(
                m.organization, m.user, m.clinic, m.role, ip=actor.ip, request_id=actor.request_id
            )
            try:
                new_token = create_token(
                    me, name=form.cleaned_data["name"], membership=m, expires_at=expires_at
                )
            except (ValueError, PermissionError, PermissionDenied) as exc:
                form.add_error(None, str(exc))
                status = 422
            else:
                form = TokenForm(memberships=active, current=m.pk)
        else:
            status = 422
    now = timezone.now()
    mine = ApiToken.objects.filter(user=request.user, organization=actor.organization)
    context: dict[str, Any] = {
        "memberships": memberships,
        "form": form,
        "new_token": new_token,
        "tokens": _token_rows(mine.select_related("membership__clinic"), now),
        "two_step_on": mfa.has_device(request.user),  # type: ignore[arg-type]
        "two_step_required": mfa.role_requires_mfa(request.user),  # type: ignore[arg-type]
        "recovery_codes_left": mfa.recovery_codes_left(request.user),  # type: ignore[arg-type]
    }
    if actor.can("organization.manage"):
        others = (
            ApiToken.objects.filter(organization=actor.organization, revoked_at__isnull=True)
            .exclude(user=request.user)
            .exclude(expires_at__lte=now)
            .select_related("user", "membership__clinic")
        )
        context["org_tokens"] = _token_rows(others, now)
    response = render(request, "accounts/settings.html", context, status=status)
    # The page may carry a new token's secret: never kept by a browser or a proxy.
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@signed_in
def revoke_token_view(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of one's own tokens, or (an owner) anyone's in the organization."""
    actor = Actor.from_request(request)
    token = get_object_or_404(ApiToken, pk=token_id, organization=actor.organization)
    if token.user_id != request.user.pk and not actor.can("organization.manage"):
        raise Http404("No such token.")
    revoke_token(actor, token)
    who = "" if token.user_id == request.user.pk else f" of {token.user.email}"
    messages.success(
        request, f"Token “{token.name}”{who} revoked: it no longer works, from now on."
    )
    return redirect("accounts:settings")
