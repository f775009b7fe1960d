"""Pages of two-step sign-in (the code, setting up the app, recovery codes) and the password
change. The rules are in accounts/mfa.py; the gate that sends a half-signed-in session here is
accounts/middleware.py (MfaRequiredMiddleware)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from glabella.accounts import lockout, mfa
from glabella.accounts.actor import client_ip
from glabella.accounts.forms import (
    ChangePasswordForm,
    CodeForm,
    SetupCodeForm,
    password_rules_in_words,
)
from glabella.accounts.reauth import needs_reauth, safe_next
from glabella.audit.models import Action

DEFAULT_NEXT = "/"


def _next(request: HttpRequest) -> str:
    return safe_next(request, request.POST.get("next") or request.GET.get("next"), DEFAULT_NEXT)


def _private(response: HttpResponse) -> HttpResponse:
    """Pages with a secret or codes on them: never kept by a browser or proxy."""
    response["Cache-Control"] = "no-store"
    return response


def _locked_out(request: HttpRequest, lock: lockout.Lock) -> HttpResponse:
    """Too many wrong codes: the half-signed-in session ends; the sign-in page says why."""
    logout(request)
    response = render(
        request,
        "accounts/login.html",
        {"form": None, "lock_message": lock.message(), "next": ""},
        status=429,
    )
    response["Retry-After"] = str(lock.seconds_left)
    return response


@never_cache
@sensitive_post_parameters("code")
def mfa_verify(request: HttpRequest) -> HttpResponse:
    """Second step: a code from the app (or a recovery code) after the password."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    user = request.user
    next_url = _next(request)
    if mfa.is_verified(request.session):
        return redirect(next_url)
    if not mfa.has_device(user):  # type: ignore[arg-type]
        return redirect(f"{_url('accounts:mfa_setup')}?{_query(next_url)}")
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        ip = client_ip(request)
        lock = lockout.check(user.email, ip)  # type: ignore[union-attr]
        if lock is not None:
            lockout.audit(request, user.email, lock, refused=True)  # type: ignore[union-attr]
            return _locked_out(request, lock)
        if form.is_valid():
            kind = mfa.verify_second_factor(user, form.cleaned_data["code"])  # type: ignore[arg-type]
            if kind is not None:
                return _passed(request, user, kind, next_url)  # type: ignore[arg-type]
            mfa.audit_user_event(request, user, Action.LOGIN_FAILED, {"two_step": "wrong code"})  # type: ignore[arg-type]
            lock = lockout.register_failure(user.email, ip)  # type: ignore[union-attr]
            if lock is not None:
                lockout.audit(request, user.email, lock, refused=False)  # type: ignore[union-attr]
                return _locked_out(request, lock)
            form.add_error(
                "code",
                "That code is not right. Type the code your app shows now (it changes every "
                "30 seconds), or a recovery code.",
            )
        status = 422
    return _private(
        render(request, "accounts/mfa_verify.html", {"form": form, "next": next_url}, status=status)
    )


def _passed(request: HttpRequest, user: Any, kind: str, next_url: str) -> HttpResponse:
    request.session.cycle_key()  # a new session id now that it is fully signed in
    mfa.mark_verified(request.session)
    lockout.register_success(user.email)
    if kind == "recovery":
        left = mfa.recovery_codes_left(user)
        mfa.audit_user_event(
            request, user, Action.LOGIN, {"two_step": "recovery code used", "left": left}
        )
        words = {0: "no recovery codes left", 1: "1 recovery code left"}.get(
            left, f"{left} recovery codes left"
        )
        advice = (
            " Make new ones in Your settings, and check your authenticator app."
            if left <= 3
            else ""
        )
        messages.warning(request, f"You signed in with a recovery code: you have {words}.{advice}")
    return redirect(next_url)


@never_cache
@sensitive_post_parameters("code")
def mfa_setup(request: HttpRequest) -> HttpResponse:
    """Set up the authenticator app: QR code and secret, a first code, then the recovery codes
    (shown once)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    user = request.user
    next_url = _next(request)
    if mfa.has_device(user):  # type: ignore[arg-type]
        if mfa.is_verified(request.session):
            messages.info(request, "Two-step sign-in is already set up.")
            return redirect("accounts:settings")
        return redirect(f"{_url('accounts:mfa_verify')}?{_query(next_url)}")
    device = mfa.pending_device(user)  # type: ignore[arg-type]
    form = SetupCodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            codes = mfa.finish_setup(request, device, form.cleaned_data["code"])
            if codes is not None:
                request.session.cycle_key()
                mfa.mark_verified(request.session)
                lockout.register_success(user.email)  # type: ignore[union-attr]
                return _private(
                    render(
                        request,
                        "accounts/recovery_codes.html",
                        {"codes": codes, "next": next_url, "first_time": True},
                    )
                )
            form.add_error(
                "code",
                "That code is not right. Check the app shows “Glabella” with your e-mail and "
                "type the code it shows now.",
            )
        status = 422
    uri = mfa.provisioning_uri(user, device.secret)  # type: ignore[arg-type]
    context = {
        "form": form,
        "next": next_url,
        "qr_svg": mfa.qr_svg(uri),
        "secret": mfa.secret_for_typing(device.secret),
        "required": mfa.role_requires_mfa(user),  # type: ignore[arg-type]
    }
    return _private(render(request, "accounts/mfa_setup.html", context, status=status))


@never_cache
def mfa_recovery_codes(request: HttpRequest) -> HttpResponse:
    """How many recovery codes are left; POST makes new ones (after re-authentication)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    user = request.user
    if not mfa.has_device(user):  # type: ignore[arg-type]
        messages.info(request, "Set up two-step sign-in first: the recovery codes come with it.")
        return redirect("accounts:mfa_setup")
    if request.method == "POST":
        response = needs_reauth(request, action="Make new recovery codes")
        if response is not None:
            return response
        codes = mfa.regenerate_recovery_codes(request, user)  # type: ignore[arg-type]
        return _private(
            render(
                request,
                "accounts/recovery_codes.html",
                {"codes": codes, "next": _url("accounts:settings"), "first_time": False},
            )
        )
    return render(
        request,
        "accounts/mfa_recovery_codes.html",
        {"left": mfa.recovery_codes_left(user)},  # type: ignore[arg-type]
    )


@never_cache
@sensitive_post_parameters("old_password", "new_password1", "new_password2")
def password_change(request: HttpRequest) -> HttpResponse:
    """Current password and the new one twice; this session stays signed in, the others end."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    user = request.user
    form = ChangePasswordForm(user, request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            form.user.must_change_password = False
            form.save()
            update_session_auth_hash(request, form.user)
            mfa.mark_reauthenticated(request.session)
            mfa.audit_user_event(request, user, Action.UPDATE, {"password": "changed"})  # type: ignore[arg-type]
            messages.success(
                request,
                "Your password is changed. Anywhere else you were signed in has been signed out.",
            )
            return redirect("accounts:settings")
        if "old_password" in form.errors:
            # Guessing the current password on an open session counts like a failed sign-in.
            lockout.register_failure(user.email, client_ip(request))  # type: ignore[union-attr]
        status = 422
    return render(
        request,
        "accounts/password_change.html",
        {
            "form": form,
            "rules": password_rules_in_words(),
            "temporary": user.must_change_password,  # type: ignore[union-attr]
        },
        status=status,
    )


def _url(name: str) -> str:
    return reverse(name)


def _query(next_url: str) -> str:
    return urlencode({"next": next_url})
