"""Stock pages. Thin: look up within the organization, call a service, render.

Every object in a URL or a form (clinic, lot, vial) is looked up within ``request.org``: another
organization's is a 404, and so is the services' ``ObjectDoesNotExist``. A service's
``ValidationError`` is shown beside the field it names and nothing is written.

Receiving is guarded against a double submit: every receive form carries a one-time token kept
in the session; the token is spent in the same transaction as the receipt, under a row lock on
the user (and SQLite's write lock), so a second submit of the same form - a double tap, a
reload, a scanner's second Enter - finds it spent and receives nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.db.models import DecimalField, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from glabella.accounts.actor import Actor
from glabella.accounts.decorators import require
from glabella.accounts.models import Clinic, User
from glabella.audit.models import Action
from glabella.audit.services import record
from glabella.clinical import catalogue, reconstitution
from glabella.db_router import reading_from_replica
from glabella.inventory import gs1, services
from glabella.inventory.forms import (
    ADJUST_REASONS,
    DESTROY_REASONS,
    WASTE_REASONS,
    AdjustForm,
    ConfirmScanForm,
    DestroyLotForm,
    PriceForm,
    RecallForm,
    ReconciliationForm,
    ReconstituteForm,
    ScanForm,
    ThresholdForm,
    TransferForm,
    TypedReceiptForm,
    WasteForm,
    WitnessForm,
    clinics_of,
    product_sizes,
)
from glabella.inventory.models import (
    GtinProduct,
    Lot,
    Price,
    StockMove,
    Threshold,
    Vial,
    VialState,
)
from glabella.web.forms_util import apply_errors

T = TypeVar("T")

EXPIRY_WARNING_DAYS = services.EXPIRY_WARNING_DAYS
MOVES_SHOWN = 200


# --- lookups -------------------------------------------------------------------------------


def _pk(value: Any) -> int:
    """A primary key from the URL or a form; anything else is simply not found."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise Http404("No such object.") from None


def _clinic(request: HttpRequest, pk: Any) -> Clinic:
    # Another organization's clinic is simply not found.
    return get_object_or_404(Clinic.objects.filter(organization=request.org), pk=_pk(pk))  # type: ignore[attr-defined]


def _chosen_clinic(request: HttpRequest, name: str = "clinic") -> Clinic:
    """The clinic named by ?clinic= (or the posted one); by default the membership's clinic."""
    params = request.POST if request.method == "POST" else request.GET
    value = params.get(name, "")
    if value in ("", None):
        return request.membership.clinic  # type: ignore[attr-defined,no-any-return]
    return _clinic(request, value)


def _lot(request: HttpRequest, pk: Any) -> Lot:
    return get_object_or_404(Lot.objects.for_org(request.org), pk=_pk(pk))  # type: ignore[attr-defined]


def _vial(request: HttpRequest, pk: Any) -> Vial:
    return get_object_or_404(
        Vial.objects.for_org(request.org).select_related(  # type: ignore[attr-defined]
            "lot", "clinic", "opened_by", "closed_by"
        ),
        pk=_pk(pk),
    )


def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a service; its 'not found' (another organization's object) is a 404."""
    try:
        return fn(*args, **kwargs)
    except ObjectDoesNotExist:
        raise Http404("No such object.") from None


# --- display helpers -----------------------------------------------------------------------


def brand(product_id: str) -> str:
    try:
        return catalogue.product(product_id).brand
    except KeyError:
        return product_id


@dataclass(frozen=True)
class Expiry:
    """A lot's expiry as the pages show it: ok, soon (within 30 days) or past."""

    day: date
    days_left: int
    state: str
    text: str


def expiry_of(lot: Lot, today: date) -> Expiry:
    days = (lot.expiry - today).days
    if days < 0:
        ago = -days
        return Expiry(lot.expiry, days, "past", f"expired {ago} day{'' if ago == 1 else 's'} ago")
    if days == 0:
        return Expiry(lot.expiry, days, "soon", "expires today")
    state = "soon" if days <= EXPIRY_WARNING_DAYS else "ok"
    return Expiry(lot.expiry, days, state, f"{days} day{'' if days == 1 else 's'} left")


@dataclass(frozen=True)
class TimeLeft:
    """Time left to a vial's use-by: ok, soon (within 2 hours) or past."""

    state: str
    text: str


def time_left(use_by: datetime | None, now: datetime) -> TimeLeft | None:
    if use_by is None:
        return None
    left = use_by - now
    if left <= timedelta(0):
        return TimeLeft("past", "past its use-by time")
    minutes = int(left.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours} h {minutes:02d} min left" if hours else f"{minutes} min left"
    state = "soon" if left <= services.USE_BY_WARNING else "ok"
    return TimeLeft(state, text)


# --- one-time form tokens ------------------------------------------------------------------

LIVE_TOKENS = "inventory.form_tokens"
SPENT_TOKENS = "inventory.spent_tokens"
KEEP_TOKENS = 20


class AlreadySent(Exception):
    """The form's token was spent already (or never issued here)."""

    def __init__(self, lot_pk: int | None) -> None:
        super().__init__("form already sent")
        self.lot_pk = lot_pk


def issue_token(request: HttpRequest) -> str:
    token = secrets.token_urlsafe(18)
    live = list(request.session.get(LIVE_TOKENS, []))[-(KEEP_TOKENS - 1) :]
    request.session[LIVE_TOKENS] = [*live, token]
    return token


def once(request: HttpRequest, token: str, write: Callable[[], services.Receipt]) -> Any:
    """Run WRITE if TOKEN is live, and spend the token in the same transaction.

    The user's row is locked first (PostgreSQL; SQLite's immediate transaction already holds
    the write lock) and the session is read again from its store, so of two submits of one
    form the second waits for the first and then finds its token spent.
    """
    with transaction.atomic():
        list(User.objects.select_for_update().filter(pk=request.user.pk).values_list("pk"))
        stored = request.session.load()
        live = list(stored.get(LIVE_TOKENS, []))
        spent = dict(stored.get(SPENT_TOKENS, {}))
        # From here this request's copy of the tokens is the stored one: the copy it loaded
        # when it began may be stale, and saving it at the end must not revive a spent token.
        request.session[LIVE_TOKENS] = live
        request.session[SPENT_TOKENS] = spent
        if not token or token not in live:
            raise AlreadySent(spent.get(token))
        receipt = write()
        spent[token] = receipt.lot.pk
        request.session[LIVE_TOKENS] = [t for t in live if t != token]
        request.session[SPENT_TOKENS] = dict(list(spent.items())[-KEEP_TOKENS:])
        request.session.save()
    return receipt


# --- overview ------------------------------------------------------------------------------


@dataclass
class ProductBlock:
    product_id: str
    brand: str
    lots: list[dict[str, Any]] = field(default_factory=list)
    sealed_in_date: int = 0
    sealed: int = 0
    open_vials: int = 0
    total_units: Decimal = Decimal(0)
    min_vials: int | None = None

    @property
    def below(self) -> bool:
        return self.min_vials is not None and self.sealed_in_date < self.min_vials


def stock_blocks(request: HttpRequest, clinic: Clinic, now: datetime) -> list[ProductBlock]:
    org = request.org  # type: ignore[attr-defined]
    today = services.local_date(clinic, now)
    blocks: dict[str, ProductBlock] = {}
    for s in services.on_hand(org, clinic):
        pid = s.lot.product_id
        block = blocks.setdefault(pid, ProductBlock(pid, brand(pid)))
        expiry = expiry_of(s.lot, today)
        block.lots.append(
            {
                "stock": s,
                "expiry": expiry,
                "open": [{"open": ov, "left": time_left(ov.use_by, now)} for ov in s.open_vials],
            }
        )
        block.sealed += s.sealed_vials
        if expiry.state != "past":
            block.sealed_in_date += s.sealed_vials
        block.open_vials += len(s.open_vials)
        block.total_units += s.total_units
    for t in Threshold.objects.for_org(org).filter(clinic=clinic):
        if t.min_vials <= 0:
            continue
        block = blocks.setdefault(t.product_id, ProductBlock(t.product_id, brand(t.product_id)))
        block.min_vials = t.min_vials
    return sorted(blocks.values(), key=lambda b: b.brand)


@require_safe
@require("stock.view")
def overview(request: HttpRequest) -> HttpResponse:
    clinic = _chosen_clinic(request)
    now = timezone.now()
    blocks = stock_blocks(request, clinic, now)
    context = {
        "clinic": clinic,
        "clinics": list(clinics_of(request.org)),  # type: ignore[attr-defined]
        "blocks": blocks,
        "below": [b for b in blocks if b.below],
        "has_stock": any(b.lots for b in blocks),
    }
    return render(request, "inventory/overview.html", context)


# --- receiving -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CartonFacts:
    """What a scanned code says, and what Glabella already knows about it."""

    code: gs1.CartonCode
    product_id: str | None
    vial_units: int | None
    lot: Lot | None
    expiry: Expiry

    @property
    def brand(self) -> str:
        return brand(self.product_id) if self.product_id else ""

    @property
    def needs_product(self) -> bool:
        return self.product_id is None

    @property
    def needs_size(self) -> bool:
        return self.vial_units is None


def carton_facts(request: HttpRequest, clinic: Clinic, code: gs1.CartonCode) -> CartonFacts:
    org = request.org  # type: ignore[attr-defined]
    mapping = GtinProduct.objects.for_org(org).filter(gtin=code.gtin).first()
    product_id = mapping.product_id if mapping else None
    lot = (
        Lot.objects.for_org(org).filter(product_id=product_id, lot_number=code.lot_number).first()
        if product_id
        else None
    )
    size = (mapping.vial_units if mapping else None) or (lot.vial_units if lot else None)
    today = services.local_date(clinic, timezone.now())
    fake = Lot(expiry=code.expiry)
    return CartonFacts(code, product_id, size, lot, expiry_of(fake, today))


def _receive_page(
    request: HttpRequest,
    clinic: Clinic,
    *,
    scan: ScanForm | None = None,
    typed: TypedReceiptForm | None = None,
    confirm: ConfirmScanForm | None = None,
    facts: CartonFacts | None = None,
    status: int = 200,
) -> HttpResponse:
    done = None
    if request.GET.get("done", "").isdigit():
        done = Lot.objects.for_org(request.org).filter(pk=int(request.GET["done"])).first()  # type: ignore[attr-defined]
    context = {
        "clinic": clinic,
        "clinics": list(clinics_of(request.org)),  # type: ignore[attr-defined]
        "scan": scan or ScanForm(),
        "typed": typed or TypedReceiptForm(initial={"token": issue_token(request)}, prefix="typed"),
        "confirm": confirm,
        "facts": facts,
        "done": done,
        "product_sizes": product_sizes(),
    }
    return render(request, "inventory/receive.html", context, status=status)


def _errors_on_top(form: Any, shown: set[str]) -> None:
    """Errors of fields the page does not show go to the top of the form."""
    for name in [n for n in form.errors if n != "__all__" and n not in shown]:
        for message in form.errors.pop(name):
            form.add_error(None, message)


def _received(request: HttpRequest, clinic: Clinic, receipt: services.Receipt) -> HttpResponse:
    lot = receipt.lot
    count = len(receipt.vials)
    text = (
        f"Received {count} × {lot.vial_units} U vial{'' if count == 1 else 's'} of "  # noqa: RUF001
        f"{brand(lot.product_id)}, lot {lot.lot_number} (expires {lot.expiry:%d/%m/%Y}), "
        f"at {clinic.name}."
    )
    if receipt.gtin_remembered:
        text += (
            f" Product code {lot.gtin} is now remembered as {brand(lot.product_id)} "
            f"{lot.vial_units} U."
        )
    messages.success(request, text)
    return redirect(f"{reverse('inventory:receive')}?clinic={clinic.pk}&done={lot.pk}")


def _already_sent(request: HttpRequest, clinic: Clinic, error: AlreadySent) -> HttpResponse:
    if error.lot_pk is not None:
        messages.warning(
            request,
            "This delivery was already received: the form was sent twice. Nothing was added "
            "the second time.",
        )
        return redirect(f"{reverse('inventory:receive')}?clinic={clinic.pk}&done={error.lot_pk}")
    messages.error(
        request, "This form has expired or was already sent: nothing was added. Scan again."
    )
    return redirect(f"{reverse('inventory:receive')}?clinic={clinic.pk}")


@require("stock.receive")
def receive(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    clinic = _chosen_clinic(request)
    if request.method != "POST":
        return _receive_page(request, clinic)
    step = request.POST.get("step", "")

    if step == "scan":
        scan = ScanForm(request.POST)
        if scan.is_valid():
            barcode = scan.cleaned_data["barcode"]
            try:
                code = gs1.parse(barcode)
            except ValidationError as exc:
                apply_errors(scan, exc)
            else:
                facts = carton_facts(request, clinic, code)
                confirm = ConfirmScanForm(
                    initial={"barcode": barcode, "token": issue_token(request)},
                    needs_product=facts.needs_product,
                )
                return _receive_page(request, clinic, scan=scan, confirm=confirm, facts=facts)
        return _receive_page(request, clinic, scan=scan, status=422)

    if step == "confirm":
        barcode = request.POST.get("barcode", "")
        try:
            code = gs1.parse(barcode)
        except ValidationError as exc:
            scan = ScanForm({"barcode": barcode})
            scan.is_valid()
            apply_errors(scan, exc)
            return _receive_page(request, clinic, scan=scan, status=422)
        facts = carton_facts(request, clinic, code)
        confirm = ConfirmScanForm(request.POST, needs_product=facts.needs_product)
        if confirm.is_valid():
            data = confirm.cleaned_data
            product_id = None if not facts.needs_product else data["product_id"] or None
            size: Any = None if not facts.needs_size else data["vial_units"] or None
            if size is None and facts.needs_size and product_id:
                sizes = catalogue.product(product_id).vial_units
                size = sizes[0] if len(sizes) == 1 else None
            try:
                receipt = once(
                    request,
                    data["token"],
                    lambda: _call(
                        services.receive,
                        actor,
                        clinic,
                        barcode=barcode,
                        product_id=product_id,
                        vial_units=size,
                        vial_count=data["vial_count"],
                    ),
                )
            except AlreadySent as sent:
                return _already_sent(request, clinic, sent)
            except ValidationError as exc:
                apply_errors(confirm, exc)
            else:
                return _received(request, clinic, receipt)
        shown = {"vial_count"}
        shown |= {"product_id"} if facts.needs_product else set()
        shown |= {"vial_units"} if facts.needs_size else set()
        _errors_on_top(confirm, shown)
        return _receive_page(
            request, clinic, scan=ScanForm(), confirm=confirm, facts=facts, status=422
        )

    if step == "typed":
        typed = TypedReceiptForm(request.POST, prefix="typed")
        if typed.is_valid():
            data = typed.cleaned_data
            try:
                receipt = once(
                    request,
                    data["token"],
                    lambda: _call(
                        services.receive,
                        actor,
                        clinic,
                        product_id=data["product_id"] or None,
                        gtin=data["gtin"],
                        lot_number=data["lot_number"],
                        expiry=data["expiry"] or None,
                        vial_units=data["vial_units"] or None,
                        vial_count=data["vial_count"],
                    ),
                )
            except AlreadySent as sent:
                return _already_sent(request, clinic, sent)
            except ValidationError as exc:
                apply_errors(typed, exc)
            else:
                return _received(request, clinic, receipt)
        return _receive_page(request, clinic, typed=typed, status=422)

    messages.error(request, "Scan the carton's code, or type what is printed on it.")
    return redirect(f"{reverse('inventory:receive')}?clinic={clinic.pk}")


# --- lot page ------------------------------------------------------------------------------


def _moves(queryset: Any) -> Any:
    return queryset.select_related(
        "by", "witness", "clinic", "other_clinic", "session__patient", "reverses"
    )


def _lot_page(
    request: HttpRequest,
    lot: Lot,
    clinic: Clinic,
    *,
    forms: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    org = request.org  # type: ignore[attr-defined]
    actor = Actor.from_request(request)
    now = timezone.now()
    today = services.local_date(clinic, now)
    stock = services.on_hand(org, lot=lot)
    vials = []
    # Units left of every vial in one query: its size plus the moves that name it.
    money = DecimalField(max_digits=14, decimal_places=2)
    for v in (
        Vial.objects.for_org(org)
        .filter(lot=lot)
        .select_related("clinic")
        .annotate(moved=Coalesce(Sum("moves__units"), Value(Decimal(0)), output_field=money))
        .order_by("clinic__name", "pk")
    ):
        left = (Decimal(v.units) + Decimal(str(v.moved))).quantize(Decimal("0.01"))
        opened = v.state == VialState.RECONSTITUTED
        vials.append(
            {
                "vial": v,
                "left": left,
                "unaccounted": v.state in services.CLOSED_STATES and left != 0,
                "time": time_left(v.use_by, now) if opened and left > 0 else None,
            }
        )
    clinics = list(clinics_of(org))
    destinations = [c for c in clinics if c.pk != clinic.pk]
    sealed_here = [
        x["vial"]
        for x in vials
        if x["vial"].clinic_id == clinic.pk and x["vial"].state == VialState.SEALED
    ]
    forms = forms or {}
    context = {
        "lot": lot,
        "brand": brand(lot.product_id),
        "clinic": clinic,
        "clinics": clinics,
        "expiry": expiry_of(lot, today),
        "stock": stock,
        "vials": vials,
        "sealed_here": sealed_here,
        "moves": list(
            _moves(StockMove.objects.for_org(org).filter(lot=lot)).order_by("-at", "-pk")[
                :MOVES_SHOWN
            ]
        ),
        "moves_cap": MOVES_SHOWN,
        "destinations": destinations,
        "transfer_form": forms.get("transfer")
        or TransferForm(initial={"from_clinic": clinic.pk}, destinations=destinations),
        "destroy_form": forms.get("destroy")
        or DestroyLotForm(
            initial={"clinic": clinic.pk}, organization=org, user=actor.user, prefix="destroy"
        ),
        "adjust_form": forms.get("adjust") or AdjustForm(initial={"clinic": clinic.pk}),
        "open_panel": forms.get("open", ""),
        "destroy_reasons": DESTROY_REASONS,
        "adjust_reasons": ADJUST_REASONS,
    }
    return render(request, "inventory/lot.html", context, status=status)


@require_safe
@require("stock.view")
def lot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lot = _lot(request, pk)
    return _lot_page(request, lot, _chosen_clinic(request))


# --- vial page -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    diluent_ml: Decimal
    info: reconstitution.ConcentrationInfo
    use_by: datetime | None


def reconstitution_preview(vial: Vial, text: str, now: datetime) -> Preview:
    """What reconstituting VIAL with TEXT mL would give (the core's figures); nothing written."""
    if vial.state != VialState.SEALED:
        raise ValidationError({"vial": f"This vial is already {vial.get_state_display().lower()}."})
    try:
        diluent = Decimal(str(text).strip().replace(",", "."))
    except InvalidOperation:
        raise ValidationError({"diluent_ml": f"“{text}” is not a volume in mL."}) from None
    if not diluent.is_finite() or diluent != diluent.quantize(Decimal("0.01")):
        raise ValidationError({"diluent_ml": "Enter the diluent volume in mL, e.g. 2.5."})
    pid = vial.lot.product_id
    try:
        info = reconstitution.concentration_info(pid, vial.units, diluent)
        use_by = reconstitution.use_by(pid, now, diluted=diluent > 0)
    except reconstitution.ReconstitutionError as exc:
        raise ValidationError({"diluent_ml": str(exc)}) from None
    return Preview(diluent, info, use_by)


def _vial_page(
    request: HttpRequest,
    vial: Vial,
    *,
    forms: dict[str, Any] | None = None,
    preview: Preview | None = None,
    status: int = 200,
) -> HttpResponse:
    org = request.org  # type: ignore[attr-defined]
    actor = Actor.from_request(request)
    now = timezone.now()
    lot = vial.lot
    product = catalogue.product(lot.product_id)
    info = services.vial_info(vial, now)
    today = services.local_date(vial.clinic, now)
    expiry = expiry_of(lot, today)
    clinics = list(clinics_of(org))
    destinations = [c for c in clinics if c.pk != vial.clinic_id]
    forms = forms or {}
    sealed = vial.state == VialState.SEALED
    opened = vial.state == VialState.RECONSTITUTED
    discarded = vial.state == VialState.DISCARDED
    context = {
        "vial": vial,
        "lot": lot,
        "product": product,
        "info": info,
        "expiry": expiry,
        "time_left": time_left(info.use_by, now) if opened else None,
        "moves": list(_moves(vial.moves.all()).order_by("at", "pk")),
        "suggestions": [r for r in product.reconstitution if r.vial_units == vial.units],
        "preview": preview,
        "can_reconstitute": sealed and expiry.state != "past",
        "can_waste": not sealed and not discarded and info.units_left > 0,
        "can_destroy": not discarded and (sealed or info.units_left > 0),
        "unaccounted": (
            info.units_left if vial.state in services.CLOSED_STATES and info.units_left else None
        ),
        "destinations": destinations,
        "reconstitute_form": forms.get("reconstitute") or ReconstituteForm(),
        "waste_form": forms.get("waste") or WasteForm(),
        "destroy_form": forms.get("destroy")
        or WitnessForm(organization=org, user=actor.user, prefix="destroy"),
        "transfer_form": forms.get("transfer")
        or TransferForm(initial={"from_clinic": vial.clinic_id}, destinations=destinations),
        "adjust_form": forms.get("adjust")
        or AdjustForm(initial={"clinic": vial.clinic_id, "vial": None if sealed else vial.pk}),
        "open_panel": forms.get("open", ""),
        "waste_reasons": WASTE_REASONS,
        "destroy_reasons": DESTROY_REASONS,
        "adjust_reasons": ADJUST_REASONS,
    }
    return render(request, "inventory/vial.html", context, status=status)


@require_safe
@require("stock.view")
def vial_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _vial_page(request, _vial(request, pk))


@require_POST
@require("stock.use")
def vial_reconstitute(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    vial = _vial(request, pk)
    form = ReconstituteForm(request.POST)
    preview = None
    if form.is_valid():
        text = form.cleaned_data["diluent_ml"]
        try:
            preview = reconstitution_preview(vial, text, timezone.now())
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            if form.cleaned_data["confirm"]:
                try:
                    vial = _call(services.reconstitute, actor, vial, text)
                except ValidationError as exc:
                    apply_errors(form, exc)
                    preview = None
                else:
                    info = services.vial_info(vial)
                    when = ""
                    if vial.use_by:
                        local = timezone.localtime(vial.use_by, ZoneInfo(vial.clinic.timezone))
                        when = f", use by {local:%H:%M} on {local:%d/%m/%Y}"
                    messages.success(
                        request,
                        f"Vial #{vial.pk} reconstituted with {preview.diluent_ml} mL: "
                        f"{_plain(vial.concentration)} U per 0.1 mL{when}. "
                        f"{_plain(info.units_left)} U in the vial.",
                    )
                    return redirect("inventory:vial", pk=vial.pk)
    return _vial_page(
        request,
        vial,
        forms={"reconstitute": form, "open": "reconstitute"},
        preview=preview,
        status=200 if preview is not None and not form.errors else 422,
    )


def _plain(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format(Decimal(value).normalize(), "f")
    return text


@require_POST
@require("stock.use")
def vial_waste(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    vial = _vial(request, pk)
    form = WasteForm(request.POST)
    if form.is_valid():
        try:
            move = _call(services.waste, actor, vial, rest=True, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            amount = -move.units if move is not None else Decimal(0)
            messages.success(
                request,
                f"{_plain(amount)} U recorded as wasted from vial #{vial.pk}; "
                "the vial is finished.",
            )
            return redirect("inventory:vial", pk=vial.pk)
    return _vial_page(request, vial, forms={"waste": form, "open": "waste"}, status=422)


@require_POST
@require("stock.use")
def vial_destroy(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    vial = _vial(request, pk)
    form = WitnessForm(
        request.POST,
        organization=actor.organization,
        user=actor.user,
        request=request,
        prefix="destroy",
    )
    if form.is_valid():
        data = form.cleaned_data
        try:
            moves = _call(
                services.destroy, actor, vial, reason=data["reason"], witness=data["witness"]
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            units = sum((-m.units for m in moves), Decimal(0))
            messages.success(
                request,
                f"Vial #{vial.pk} destroyed ({_plain(units)} U), witnessed by {data['witness']}.",
            )
            return redirect("inventory:vial", pk=vial.pk)
    return _vial_page(request, vial, forms={"destroy": form, "open": "destroy"}, status=422)


# --- lot actions ---------------------------------------------------------------------------


def _back(
    request: HttpRequest, lot: Lot, clinic: Clinic, name: str, form: Any, status: int = 422
) -> HttpResponse:
    """Show the form again, with its errors, on the page it was sent from."""
    vial_pk = request.POST.get("from_vial", "")
    if vial_pk:
        vial = _vial(request, vial_pk)
        return _vial_page(request, vial, forms={name: form, "open": name}, status=status)
    return _lot_page(request, lot, clinic, forms={name: form, "open": name}, status=status)


def _after(request: HttpRequest, lot: Lot, clinic: Clinic) -> HttpResponse:
    vial_pk = request.POST.get("from_vial", "")
    if vial_pk:
        return redirect("inventory:vial", pk=_vial(request, vial_pk).pk)
    return redirect(f"{reverse('inventory:lot', args=[lot.pk])}?clinic={clinic.pk}")


@require_POST
@require("stock.receive")
def lot_transfer(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    lot = _lot(request, pk)
    from_clinic = _clinic(request, request.POST.get("from_clinic"))
    to_value = request.POST.get("to_clinic", "")
    to_clinic = _clinic(request, to_value) if to_value.strip() else None
    destinations = [c for c in clinics_of(actor.organization) if c.pk != from_clinic.pk]
    form = TransferForm(request.POST, destinations=destinations)
    if form.is_valid() and to_clinic is not None:
        count = form.cleaned_data["vial_count"]
        try:
            _call(services.transfer, actor, from_clinic, to_clinic, lot, count)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(
                request,
                f"{count.strip()} sealed vial(s) of lot {lot.lot_number} sent from "
                f"{from_clinic.name} to {to_clinic.name}.",
            )
            return _after(request, lot, from_clinic)
    return _back(request, lot, from_clinic, "transfer", form)


@require_POST
@require("stock.use")
def lot_destroy(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    lot = _lot(request, pk)
    clinic = _clinic(request, request.POST.get("destroy-clinic"))
    form = DestroyLotForm(
        request.POST,
        organization=actor.organization,
        user=actor.user,
        request=request,
        prefix="destroy",
    )
    if form.is_valid():
        data = form.cleaned_data
        try:
            moves = _call(
                services.destroy,
                actor,
                lot,
                reason=data["reason"],
                witness=data["witness"],
                vials=data["vials"],
                clinic=clinic,
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(
                request,
                f"{len(moves)} sealed vial{'' if len(moves) == 1 else 's'} of lot "
                f"{lot.lot_number} destroyed at {clinic.name}, witnessed by {data['witness']}.",
            )
            return _after(request, lot, clinic)
    return _back(request, lot, clinic, "destroy", form)


@require_POST
@require("stock.manage")
def lot_adjust(request: HttpRequest, pk: int) -> HttpResponse:
    actor = Actor.from_request(request)
    lot = _lot(request, pk)
    clinic = _clinic(request, request.POST.get("clinic"))
    vial_value = request.POST.get("vial", "")
    vial = _vial(request, vial_value) if vial_value.strip() else None
    form = AdjustForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            moves = _call(
                services.adjust,
                actor,
                clinic,
                lot,
                reason=data["reason"],
                units=data["units"] or None,
                vials=data["vials"] or None,
                vial=vial,
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            total = sum((m.units for m in moves), Decimal(0))
            messages.success(
                request,
                f"Stock of lot {lot.lot_number} at {clinic.name} adjusted by "
                f"{'+' if total > 0 else ''}{_plain(total)} U: {data['reason'].strip()}.",
            )
            return _after(request, lot, clinic)
    return _back(request, lot, clinic, "adjust", form)


# --- reconciliation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    clinic: Clinic | None
    lot: Lot | None
    start: date
    end: date


def _month(today: date) -> tuple[date, date]:
    start = today.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following - timedelta(days=1)


def _period(request: HttpRequest) -> tuple[ReconciliationForm, Period]:
    org = request.org  # type: ignore[attr-defined]
    home = request.membership.clinic  # type: ignore[attr-defined]
    start, end = _month(services.local_date(home, timezone.now()))
    data = {"clinic": str(home.pk), "lot": "", "start": start, "end": end}
    data.update({k: v for k, v in request.GET.items() if k in data and v != ""})
    clinics = list(clinics_of(org))
    lots = Lot.objects.for_org(org).order_by("-expiry", "lot_number")
    form = ReconciliationForm(data, clinics=clinics, lots=lots)
    form.is_valid()
    clinic_value = str(form.cleaned_data.get("clinic") or home.pk)
    clinic = None if clinic_value == "all" else _clinic(request, clinic_value)
    lot_value = form.cleaned_data.get("lot") or ""
    lot = _lot(request, lot_value) if lot_value else None
    if form.errors:
        return form, Period(clinic, lot, start, end)
    return form, Period(
        clinic, lot, form.cleaned_data.get("start") or start, form.cleaned_data.get("end") or end
    )


@require_safe
@require("stock.view")
def reconciliation_page(request: HttpRequest) -> HttpResponse:
    form, period = _period(request)
    with reading_from_replica():  # a report: from the replica when there is one
        rows = services.reconciliation(
            request.org,  # type: ignore[attr-defined]
            period.clinic,
            period.lot,
            start=period.start,
            end=period.end,
        )
    query = {
        "clinic": period.clinic.pk if period.clinic else "all",
        "lot": period.lot.pk if period.lot else "",
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
    }
    context = {
        "form": form,
        "period": period,
        "rows": [{"row": r, "brand": brand(r.lot.product_id)} for r in rows],
        "unbalanced": [r for r in rows if not r.balanced],
        "csv_query": "&".join(f"{k}={v}" for k, v in query.items()),
    }
    return render(request, "inventory/reconciliation.html", context)


@require_safe
@require("stock.view")
def reconciliation_csv(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    _form, period = _period(request)
    with reading_from_replica():
        text = services.reconciliation_csv(
            actor.organization, period.clinic, period.lot, start=period.start, end=period.end
        )
    rows = max(text.count("\r\n") - 1, 0)
    name = f"stock-reconciliation-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
    record(
        actor,
        Action.EXPORT,
        object_type="inventory.reconciliation",
        object_id=str(period.lot.pk) if period.lot else "",
        label=f"stock reconciliation {period.start:%d/%m/%Y} to {period.end:%d/%m/%Y} (CSV)",
        detail={
            "clinic": period.clinic.pk if period.clinic else "all",
            "lot": period.lot.pk if period.lot else None,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "rows": rows,
        },
    )
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_safe
@require("stock.manage")
def prices_csv(request: HttpRequest) -> HttpResponse:
    """Signed treatments of the period with their prices (the reconciliation's period form)."""
    actor = Actor.from_request(request)
    _form, period = _period(request)
    text = services.price_export_csv(
        actor.organization, period.clinic, start=period.start, end=period.end
    )
    record(
        actor,
        Action.EXPORT,
        object_type="inventory.prices",
        label=f"treatment prices {period.start:%d/%m/%Y} to {period.end:%d/%m/%Y} (CSV)",
        detail={
            "clinic": period.clinic.pk if period.clinic else "all",
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "rows": max(text.count("\r\n") - 1, 0),
        },
    )
    name = f"treatment-prices-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- recall --------------------------------------------------------------------------------


def _by_patient(trace: services.RecallTrace) -> list[dict[str, Any]]:
    """Rows grouped per patient, then per session (the rows come sorted that way)."""
    patients: dict[int, dict[str, Any]] = {}
    for r in trace.rows:
        p = patients.setdefault(r.patient_id, {"row": r, "sessions": {}, "units": Decimal(0)})
        s = p["sessions"].setdefault(r.session_id, {"row": r, "points": [], "units": Decimal(0)})
        s["points"].append(r)
        s["units"] += r.units
        p["units"] += r.units
    result = []
    for p in patients.values():
        p["sessions"] = list(p["sessions"].values())
        result.append(p)
    return result


@require_safe
@require("stock.recall")
def recall(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    form = RecallForm(request.GET or None)
    trace = None
    if form.is_valid():
        try:
            trace = _call(services.view_recall, actor, form.cleaned_data["lot"])
        except ValidationError as exc:
            apply_errors(form, exc)
    context: dict[str, Any] = {"form": form, "trace": trace}
    if trace is not None:
        context.update(
            {
                "patients": _by_patient(trace),
                "lots": [{"lot": lot, "brand": brand(lot.product_id)} for lot in trace.lots],
                "total_units": sum((r.units for r in trace.rows), Decimal(0)),
            }
        )
    return render(request, "inventory/recall.html", context)


@require_safe
@require("stock.recall")
def recall_csv(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    form = RecallForm(request.GET or None)
    if not form.is_valid():
        messages.error(request, "Enter the lot number to trace.")
        return redirect("inventory:recall")
    number = gs1.normalize_lot(form.cleaned_data["lot"])
    try:
        text = _call(services.recall_csv, actor, number)
    except ValidationError:
        messages.error(request, "Enter the lot number to trace.")
        return redirect("inventory:recall")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in number)[:40]
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="recall-lot-{safe}.csv"'
    return response


# --- thresholds and prices -----------------------------------------------------------------


@require("stock.manage")
def stock_settings(request: HttpRequest) -> HttpResponse:
    actor = Actor.from_request(request)
    org = actor.organization
    clinic = _chosen_clinic(request)
    thresholds = {t.product_id: t for t in Threshold.objects.for_org(org).filter(clinic=clinic)}
    prices = {p.product_id: p for p in Price.objects.for_org(org).filter(clinic=clinic)}
    last = Price.objects.for_org(org).order_by("-pk").first()
    currency = last.currency if last else ""
    bound: tuple[str, str, Any] | None = None
    status = 200
    if request.method == "POST":
        product_id = request.POST.get("product_id", "")
        what = request.POST.get("what", "")
        try:
            product = catalogue.product(product_id)
        except KeyError:
            product = None
        if product is None or what not in ("threshold", "price"):
            messages.error(request, "Choose the product and what to set.")
            return redirect(f"{reverse('inventory:settings')}?clinic={clinic.pk}")
        if what == "threshold":
            form: Any = ThresholdForm(request.POST, prefix=f"t-{product_id}")
            if form.is_valid():
                try:
                    services.set_threshold(
                        actor, clinic, product_id, form.cleaned_data["min_vials"]
                    )
                except ValidationError as exc:
                    apply_errors(form, exc)
                else:
                    messages.success(
                        request,
                        f"{product.brand} at {clinic.name}: warn below "
                        f"{form.cleaned_data['min_vials'].strip()} sealed vials.",
                    )
                    return redirect(f"{reverse('inventory:settings')}?clinic={clinic.pk}")
        else:
            form = PriceForm(request.POST, prefix=f"p-{product_id}")
            if form.is_valid():
                data = form.cleaned_data
                try:
                    price = services.set_price(
                        actor, clinic, product_id, data["basis"], data["amount"], data["currency"]
                    )
                except ValidationError as exc:
                    apply_errors(form, exc)
                else:
                    messages.success(
                        request,
                        f"{product.brand} at {clinic.name}: {price.amount} {price.currency} "
                        f"{price.get_basis_display().lower()}.",
                    )
                    return redirect(f"{reverse('inventory:settings')}?clinic={clinic.pk}")
        bound = (product_id, what, form)
        status = 422
    rows = []
    for p in catalogue.products():
        t = thresholds.get(p.id)
        price = prices.get(p.id)
        threshold_form: Any = ThresholdForm(
            prefix=f"t-{p.id}", initial={"min_vials": t.min_vials if t else ""}
        )
        price_form: Any = PriceForm(
            prefix=f"p-{p.id}",
            initial={
                "amount": price.amount if price else "",
                "currency": price.currency if price else currency,
                "basis": price.basis if price else "per_unit",
            },
        )
        if bound and bound[0] == p.id:
            if bound[1] == "threshold":
                threshold_form = bound[2]
            else:
                price_form = bound[2]
        rows.append(
            {
                "product": p,
                "threshold": t,
                "price": price,
                "threshold_form": threshold_form,
                "price_form": price_form,
            }
        )
    context = {"clinic": clinic, "clinics": list(clinics_of(org)), "rows": rows}
    return render(request, "inventory/settings.html", context, status=status)
