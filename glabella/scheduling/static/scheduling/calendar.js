// Calendar pages: drag an appointment to move it, pick a patient while booking, fill in the
// length from the type, send a form once. Every page works without this script: a free time
// is a link to the booking form, and an appointment's own page moves it with a form.

const csrfToken = () => {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (input) return input.value;
  try {
    return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
  } catch {
    return "";
  }
};

// --- small helpers for every calendar page ------------------------------------------------

// Choosing a clinic or a practitioner shows it at once.
document.addEventListener("change", (event) => {
  const select = event.target.closest?.("select[data-autosubmit]");
  if (select?.form) select.form.requestSubmit();
});

// A form marked data-once is sent once: a second tap while the first is on its way does
// nothing. (The server also finds an identical booking and shows it instead of a second.)
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) return;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
  setTimeout(() => {
    for (const button of form.querySelectorAll("button[type=submit], button:not([type])")) {
      button.setAttribute("aria-disabled", "true");
      button.disabled = true;
    }
  }, 0);
});
// Coming back with the browser's back button shows the page from its cache: let it send again.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  for (const form of document.querySelectorAll("form[data-once]")) {
    delete form.dataset.sent;
    for (const button of form.querySelectorAll("button")) {
      button.disabled = false;
      button.removeAttribute("aria-disabled");
    }
  }
});

// --- booking form ---------------------------------------------------------------------------

// The type carries its usual length: fill it in until the person types a length themselves.
for (const kind of document.querySelectorAll(".book-form select[name=kind]")) {
  const minutes = kind.form.querySelector("input[name=minutes]");
  if (!minutes) continue;
  minutes.addEventListener("input", () => {
    minutes.dataset.touched = "1";
  });
  kind.addEventListener("change", () => {
    const usual = kind.selectedOptions[0]?.dataset.minutes;
    if (usual && !minutes.dataset.touched) minutes.value = usual;
  });
}

// Picking a patient from the search results fills the form without leaving the page (the
// result is a link to the same form with the patient chosen, for when there is no script).
document.addEventListener("click", (event) => {
  const pick = event.target.closest?.("a[data-pick-patient]");
  const change = event.target.closest?.("a[data-change-patient]");
  const chosen = document.querySelector("[data-patient-chosen]");
  const search = document.querySelector("[data-patient-search]");
  const field = document.querySelector(".book-form input[name=patient]");
  if (!chosen || !search || !field) return;
  if (pick) {
    event.preventDefault();
    field.value = pick.dataset.pickPatient;
    chosen.querySelector("[data-patient-name]").textContent = pick.dataset.name;
    chosen.querySelector("[data-patient-born]").textContent = pick.dataset.born || "";
    chosen.hidden = false;
    search.hidden = true;
    for (const error of search.querySelectorAll(".error")) error.remove();
    search.closest(".book-patient")?.classList.remove("has-error");
    document.getElementById("patient-results").replaceChildren();
    const next = document.querySelector(".book-form select:not([disabled])");
    next?.focus();
  } else if (change) {
    event.preventDefault();
    field.value = "";
    chosen.hidden = true;
    search.hidden = false;
    search.querySelector("input[type=search]")?.focus();
  }
});

// --- drag to move on the day view -----------------------------------------------------------

const LONG_PRESS_MS = 350; // a finger holds an appointment this long to pick it up
const START_PX = 6; // a mouse moves this far before a press becomes a drag

let drag = null;

const alertBox = () => document.getElementById("cal-alert");
const statusBox = () => document.getElementById("cal-status");

let sayTimer = 0;

// Show what the server said at the foot of the screen: a refusal stays until closed (or the
// next drag), a success goes by itself after a few seconds.
function say(box, text) {
  const other = box === alertBox() ? statusBox() : alertBox();
  if (other) other.hidden = true;
  if (!box) return;
  const words = document.createElement("span");
  words.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "Close";
  close.addEventListener("click", () => {
    box.hidden = true;
  });
  box.replaceChildren(words, close);
  box.hidden = false;
  clearTimeout(sayTimer);
  if (box === statusBox()) sayTimer = setTimeout(() => (box.hidden = true), 8000);
}

function slotAt(x, y) {
  for (const el of document.elementsFromPoint(x, y)) {
    if (el.classList?.contains("slot") && el.closest("[data-calendar]")) return el;
  }
  return null;
}

function hint(block, slot) {
  let tag = block.querySelector(".drop-hint");
  if (!slot) {
    tag?.remove();
    return;
  }
  if (!tag) {
    tag = document.createElement("span");
    tag.className = "drop-hint";
    block.prepend(tag);
  }
  const column = slot.closest(".cal-col");
  const name = column?.getAttribute("aria-label") || "";
  tag.textContent = `→ ${slot.dataset.startsAt.slice(11)}${column?.dataset.practitioner !== block.dataset.practitioner ? ` · ${name}` : ""}`;
}

function clearTarget() {
  for (const el of document.querySelectorAll(".slot.drop-target")) el.classList.remove("drop-target");
}

function snapBack(block) {
  block.classList.remove("dragging", "armed", "pending");
  block.style.transform = "";
  hint(block, null);
  clearTarget();
}

function endListening() {
  document.removeEventListener("pointermove", onPointerMove);
  document.removeEventListener("pointerup", onPointerUp);
  document.removeEventListener("pointercancel", onPointerCancel);
}

// A drag is not a tap: the click the browser may send when the button comes up (on the block
// or on whatever is under it) must not open anything.
function swallowClick() {
  const stop = (event) => {
    event.preventDefault();
    event.stopPropagation();
  };
  document.addEventListener("click", stop, { capture: true, once: true });
  setTimeout(() => document.removeEventListener("click", stop, { capture: true }), 300);
}

function onPointerDown(event) {
  const block = event.target.closest?.(".appt[data-move]");
  if (!block || drag || !event.isPrimary) return;
  if (event.pointerType === "mouse" && event.button !== 0) return;
  const rect = block.getBoundingClientRect();
  drag = {
    block,
    id: event.pointerId,
    x0: event.clientX,
    y0: event.clientY,
    grabY: event.clientY - rect.top,
    touch: event.pointerType === "touch",
    armed: event.pointerType !== "touch",
    active: false,
    timer: null,
    target: null,
    scroll0: window.scrollY,
    lastX: event.clientX,
    lastY: event.clientY,
    frame: 0,
  };
  if (drag.touch) {
    drag.timer = setTimeout(() => {
      if (!drag) return;
      drag.armed = true;
      block.classList.add("armed");
    }, LONG_PRESS_MS);
  }
  document.addEventListener("pointermove", onPointerMove);
  document.addEventListener("pointerup", onPointerUp);
  document.addEventListener("pointercancel", onPointerCancel);
}

function onPointerMove(event) {
  if (!drag || event.pointerId !== drag.id) return;
  const dx = event.clientX - drag.x0;
  const dy = event.clientY - drag.y0;
  if (!drag.active) {
    if (Math.hypot(dx, dy) < START_PX) return;
    if (!drag.armed) {
      // A finger that moves before the long press is scrolling the page, not dragging.
      clearTimeout(drag.timer);
      drag = null;
      endListening();
      return;
    }
    drag.active = true;
    drag.block.classList.add("dragging");
    drag.block.classList.remove("armed");
    alertBox() && (alertBox().hidden = true);
  }
  event.preventDefault();
  drag.lastX = event.clientX;
  drag.lastY = event.clientY;
  follow();
  if (!drag.frame) drag.frame = requestAnimationFrame(autoScroll);
}

// Put the block under the pointer and find the slot under its top edge (where it would start).
function follow() {
  const dx = drag.lastX - drag.x0;
  const dy = drag.lastY - drag.y0 + (window.scrollY - drag.scroll0);
  drag.block.style.transform = `translate(${dx}px, ${dy}px)`;
  const slot = slotAt(drag.lastX, drag.lastY - drag.grabY + 4);
  if (slot !== drag.target) {
    clearTarget();
    slot?.classList.add("drop-target");
    drag.target = slot;
    hint(drag.block, slot);
  }
}

// Near the top or bottom of the screen the page scrolls, so a drag can reach any time of day.
const EDGE_PX = 56;
function autoScroll() {
  if (!drag?.active) return;
  const header = document.querySelector(".cal-header")?.getBoundingClientRect().bottom ?? 0;
  let step = 0;
  if (drag.lastY > window.innerHeight - EDGE_PX) step = 14;
  else if (drag.lastY < Math.max(EDGE_PX, header + 24)) step = -14;
  if (step) {
    const before = window.scrollY;
    window.scrollBy(0, step);
    if (window.scrollY !== before) follow();
  }
  drag.frame = requestAnimationFrame(autoScroll);
}

function onPointerCancel(event) {
  if (!drag || event.pointerId !== drag.id) return;
  clearTimeout(drag.timer);
  cancelAnimationFrame(drag.frame);
  snapBack(drag.block);
  drag = null;
  endListening();
}

function onPointerUp(event) {
  if (!drag || event.pointerId !== drag.id) return;
  const { block, active, target } = drag;
  clearTimeout(drag.timer);
  cancelAnimationFrame(drag.frame);
  drag = null;
  endListening();
  if (!active) {
    block.classList.remove("armed");
    return; // a tap: the link opens the appointment
  }
  swallowClick();
  const column = target?.closest(".cal-col");
  if (
    !target ||
    !column ||
    (target.dataset.startsAt === block.dataset.startsAt &&
      column.dataset.practitioner === block.dataset.practitioner)
  ) {
    snapBack(block);
    return;
  }
  clearTarget();
  move(block, target.dataset.startsAt, column.dataset.practitioner);
}

async function move(block, startsAt, practitioner) {
  block.classList.remove("dragging");
  block.classList.add("pending");
  const body = new URLSearchParams({
    version: block.dataset.version,
    starts_at: startsAt,
    practitioner,
  });
  let answer = null;
  let status = 0;
  try {
    const response = await fetch(block.dataset.move, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    });
    status = response.status;
    if ((response.headers.get("Content-Type") || "").includes("json")) {
      answer = await response.json();
    }
  } catch {
    snapBack(block);
    say(alertBox(), "Not moved: the connection was lost. Check the network and try again.");
    return;
  }
  if (answer?.ok) {
    await refresh();
    say(statusBox(), answer.message);
    return;
  }
  snapBack(block);
  const why =
    answer?.error ||
    (status === 403
      ? "Not moved: your role does not allow moving appointments."
      : `Not moved: the server answered ${status}. Reload the page and try again.`);
  say(alertBox(), why);
  if (answer?.stale) await refresh();
}

async function refresh() {
  // Fetch this page again and swap in the calendar: the move (and anyone else's) shows.
  try {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    const html = await response.text();
    const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-calendar]");
    const current = document.querySelector("[data-calendar]");
    if (fresh && current) current.replaceWith(fresh);
  } catch {
    window.location.reload();
  }
}

// While a finger drags an appointment, the page must not scroll under it.
document.addEventListener(
  "touchmove",
  (event) => {
    if (drag?.armed) event.preventDefault();
  },
  { passive: false },
);
// A long press on a link would open the browser's menu: not while picking up an appointment.
document.addEventListener("contextmenu", (event) => {
  if (event.target.closest?.(".appt[data-move]") && drag) event.preventDefault();
});
// The browser's own dragging of links (a block, or a free time under a moving block) would
// end ours: the calendar never uses it.
document.addEventListener("dragstart", (event) => {
  if (drag || event.target.closest?.("[data-calendar]")) event.preventDefault();
});
document.addEventListener("pointerdown", onPointerDown);
