"""Re-authentication ("Confirm it's you") and the owner's team page.

- ``reauth``: the password again (and a code from the authenticator app, or a recovery code,
  for a member who has one) before a sensitive action; see accounts/reauth.py.
- ``team``: every member of the organization by clinic, with role, on/off, two-step set up,
  locked out; add a member. ``team_member``: change one membership's role, switch it off or
  on, reset two-step, unlock sign-in. Owners only (``organization.manage``); every change asks
  for the password again first and is audited with before and after.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from glabella.accounts import lockout, mfa, services
from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require, signed_in
from glabella.accounts.models import Clinic, LoginThrottle, Membership, TotpDevice, User
from glabella.accounts.reauth import needs_reauth, safe_next
from glabella.accounts.roles import Role
from glabella.audit.models import Action
from glabella.audit.services import record

NO_STORE = "no-store"


def _locked_until(email: str) -> Any:
    """When EMAIL's sign-in lock ends, or None when it is not locked."""
    return lockout.locked_until(email)


# --- "Confirm it's you" ----------------------------------------------------------------------


class ReauthForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    code = forms.CharField(
        label="Code from your authenticator app",
        required=False,
        max_length=20,
        help_text="The 6 digits the app shows now, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args: Any, needs_code: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.needs_code = needs_code
        if needs_code:
            self.fields["code"].required = True
        else:
            del self.fields["code"]


@signed_in
@require_http_methods(["GET", "POST"])
def reauth(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    needs_code = mfa.has_device(user)
    form = ReauthForm(request.POST or None, needs_code=needs_code)
    status = 200
    if request.method == "POST":
        actor = Actor.from_request(request)
        lock = lockout.check(user.email, actor.ip)
        if lock is not None:
            form.is_valid()
            form.add_error(None, lock.message())
            lockout.audit(request, user.email, lock, refused=True)
            status = 429
        elif form.is_valid():
            ok_password = user.check_password(form.cleaned_data["password"])
            method = None
            if ok_password and needs_code:
                method = mfa.verify_second_factor(user, form.cleaned_data["code"])
            if ok_password and (method is not None or not needs_code):
                lockout.register_success(user.email)
                mfa.mark_reauthenticated(request.session)
                record(
                    actor,
                    Action.LOGIN,
                    user,
                    label=f"{user.email} confirmed it's them",
                    detail={"step": "confirm", "with": method or "password"},
                )
                if method == "recovery":
                    left = mfa.recovery_codes_left(user)
                    messages.warning(
                        request,
                        f"You used a recovery code: {left} left. Make new ones in Your settings "
                        "if you are running low.",
                    )
                return redirect(next_url)
            record(
                actor,
                Action.LOGIN_FAILED,
                user,
                label=f"{user.email} failed to confirm it's them",
                detail={"step": "confirm", "wrong": "password" if not ok_password else "code"},
            )
            lock = lockout.register_failure(user.email, actor.ip)
            if lock is not None:
                lockout.audit(request, user.email, lock, refused=False)
                if lock.is_account:
                    # Someone at a screen left signed in, guessing the password: sign it out.
                    logout(request)
                    messages.error(request, lock.message())
                    return redirect("accounts:login")
                form.add_error(None, lock.message())
                status = 429
            else:
                form.add_error(
                    None,
                    "That password or code is not right. Try again."
                    if needs_code
                    else "That password is not right. Try again.",
                )
                status = 422
        else:
            status = 422
    response = render(
        request,
        "accounts/reauth.html",
        {"form": form, "next": next_url, "needs_code": needs_code},
        status=status,
    )
    response["Cache-Control"] = NO_STORE
    return response


# --- the team page ---------------------------------------------------------------------------


class AddMemberForm(forms.Form):
    email = forms.EmailField(
        label="E-mail address", widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    clinic = forms.ModelChoiceField(
        label="Clinic", queryset=Clinic.objects.none(), empty_label=None
    )
    role = forms.ChoiceField(label="Role", choices=Role.choices)

    def __init__(self, *args: Any, organization: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = Clinic.objects.filter(organization=organization)  # type: ignore[attr-defined]


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)


def _team_rows(organization: Any) -> list[dict[str, Any]]:
    members = list(
        Membership.objects.filter(organization=organization)
        .select_related("user", "clinic")
        .order_by("clinic__name", "-is_active", "user__email")
    )
    user_ids = {m.user_id for m in members}
    with_device = set(
        TotpDevice.objects.filter(user_id__in=user_ids, confirmed_at__isnull=False).values_list(
            "user_id", flat=True
        )
    )
    now = timezone.now()
    locked = {
        row.key
        for row in LoginThrottle.objects.filter(
            key__in=[lockout.account_key(m.user.email) for m in members], locked_until__gt=now
        )
    }
    clinics: dict[int, dict[str, Any]] = {}
    for m in members:
        group = clinics.setdefault(m.clinic_id, {"clinic": m.clinic, "members": []})
        group["members"].append(
            {
                "membership": m,
                "two_step": m.user_id in with_device,
                "locked": lockout.account_key(m.user.email) in locked,
            }
        )
    return list(clinics.values())


@require("organization.manage")
@require_http_methods(["GET", "POST"])
def team(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    form = AddMemberForm(request.POST or None, organization=actor.organization)
    added: dict[str, Any] | None = None
    status = 200
    if request.method == "POST":
        if (ask := needs_reauth(request, action="Add to the team")) is not None:
            return ask
        if form.is_valid():
            data = form.cleaned_data
            email = data["email"].strip().lower()
            is_new = not User.objects.filter(email__iexact=email).exists()
            password = services.temporary_password() if is_new else ""
            try:
                m = services.add_member(
                    actor,
                    email=email,
                    clinic=data["clinic"],
                    role=data["role"],
                    password=password,
                    first_name=data["first_name"].strip(),
                    last_name=data["last_name"].strip(),
                    temporary=is_new,
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
                status = 422
            else:
                added = {"membership": m, "password": password}
                form = AddMemberForm(organization=actor.organization)
        else:
            status = 422
    response = render(
        request,
        "accounts/team.html",
        {
            "groups": _team_rows(actor.organization),
            "form": form,
            "added": added,
            "mfa_roles": sorted(str(Role(r).label) for r in mfa.ROLES_REQUIRING_MFA),
        },
        status=status,
    )
    # The answer may carry a temporary password: never kept by a browser or a proxy.
    response["Cache-Control"] = NO_STORE
    return response


def _apply_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
    else:
        for message in exc.messages:
            form.add_error(None, message)


_ACTION_WORDS = {
    "role": "Change role",
    "deactivate": "Switch off",
    "reactivate": "Switch back on",
    "reset_two_step": "Reset two-step sign-in",
    "unlock": "Unlock sign-in",
}


@require("organization.manage")
@require_http_methods(["GET", "POST"])
def team_member(request: HttpRequest, membership_id: int) -> HttpResponse:
    actor = Actor.from_request(request)
    m = get_object_or_404(
        Membership.objects.filter(organization=actor.organization).select_related("user", "clinic"),
        pk=membership_id,
    )
    role_form = RoleForm(initial={"role": m.role})
    status = 200
    if request.method == "POST":
        do = request.POST.get("do", "")
        if do not in _ACTION_WORDS:
            messages.error(request, "Choose what to change.")
            return redirect("accounts:team_member", m.pk)
        if (ask := needs_reauth(request, action=_ACTION_WORDS[do])) is not None:
            return ask
        try:
            done = _change_member(request, actor, m, do)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            status = 422
            role_form = RoleForm(request.POST) if do == "role" else role_form
        else:
            if done:
                messages.success(request, done)
            if m.pk == request.membership.pk and not _still_owner(m):  # type: ignore[attr-defined]
                return redirect("web:dashboard")  # the owner gave up their own owner role
            return redirect("accounts:team_member", m.pk)
    others = list(
        Membership.objects.filter(organization=actor.organization, user=m.user)
        .exclude(pk=m.pk)
        .select_related("clinic")
    )
    response = render(
        request,
        "accounts/team_member.html",
        {
            "m": m,
            "role_form": role_form,
            "two_step": mfa.has_device(m.user),
            "locked_until": _locked_until(m.user.email),
            "other_memberships": others,
            "is_me": m.user_id == request.user.pk,
        },
        status=status,
    )
    response["Cache-Control"] = NO_STORE
    return response


def _still_owner(m: Membership) -> bool:
    m.refresh_from_db(fields=["role", "is_active"])
    return m.is_active and m.role == Role.OWNER


def _change_member(request: HttpRequest, actor: Actor, m: Membership, do: str) -> str:
    """Do DO to M; returns what to tell the owner (empty when nothing changed)."""
    who = m.user.get_full_name() or m.user.email
    if do == "role":
        form = RoleForm(request.POST)
        if not form.is_valid():
            raise ValidationError("Choose a role.")
        before = m.get_role_display()
        services.change_role(actor, m, form.cleaned_data["role"])
        m.refresh_from_db()
        if m.get_role_display() == before:
            return ""
        return (
            f"{who} is now {m.get_role_display()} at {m.clinic.name} (was {before}). "
            "It applies from their next page."
        )
    if do in ("deactivate", "reactivate"):
        active = do == "reactivate"
        services.set_member_active(actor, m, active)
        if active:
            return f"{who} can work at {m.clinic.name} again."
        return (
            f"{who} is switched off at {m.clinic.name}: from their next page they cannot "
            "work there."
        )
    if do == "reset_two_step":
        if not mfa.has_device(m.user):
            return f"{who} has no authenticator app set up: nothing to reset."
        mfa.reset(actor, m.user)  # removes the app and the recovery codes, audited
        return (
            f"Two-step sign-in of {who} reset: at their next sign-in they set up their "
            "authenticator app again."
        )
    # unlock
    lockout.clear(m.user.email)
    record(
        actor,
        Action.UPDATE,
        m.user,
        label=f"Sign-in of {m.user.email} unlocked",
        detail={"change": "unlock", "member": m.user.email},
    )
    return f"{who} can sign in again now."
