// The charting page.
//
// Tap a muscle area: a point is added there with the units and depth chosen on the right.
// Tap a point: it is selected (the unit buttons then change it); tap it again or press Escape
// to let go. Drag a point: it moves (the server names the muscle it lands on). Keyboard: Tab to
// a muscle area and press Enter or Space to add a point at its centre; every other action is a
// button in the points list.
//
// Every change goes to the server through htmx, which answers with the whole workspace. The
// session's version travels with every request: a stale page or a double tap never overwrites
// anything. Requests run one at a time in order (hx-sync on the chart root), so quick taps are
// all kept. One ES module: no inline script, no inline handlers; htmx is loaded by the page.

const LOST =
  "Not saved: the connection was lost. Your chart is as shown before the last change; try again.";
const failed = (status) =>
  `Not saved: the server could not take the last change (error ${status}). ` +
  "Your chart is as shown before it; try again or reload the page.";
const DRAG_START_PX = 6;
const HIT_PX = 24;

const root = document.querySelector("[data-chart-root]");
const htmx = window.htmx;
const state = { units: "", depth: "IM", keyboard: false, drag: null, focusBefore: null };

const workspace = () => document.getElementById("workspace");
const readonly = () => !workspace() || workspace().dataset.readonly === "1";
const fixed = (n) => (Math.round(Number(n) * 100) / 100).toFixed(2);
const clamp = (n) => Math.min(100, Math.max(0, n));

function setUp() {
  if (!root || !htmx) return;
  // A refused change (409 stale version, 422 bad value) still shows the workspace it sends,
  // with the reason; any other error keeps the page as it was and says so.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "409|422", swap: true, error: false },
    { code: "[23]..", swap: true },
    { code: "[45]..", swap: false, error: true },
    { code: "...", swap: false },
  ];
  // New content is wired up (hx-post on the new forms) in the same moment it appears, so a
  // fast keyboard or scanner can never submit a form htmx has not taken over yet.
  htmx.config.defaultSettleDelay = 0;
  const w = workspace();
  state.units = w.dataset.units;
  state.depth = w.dataset.depth;
  document.addEventListener("keydown", () => { state.keyboard = true; }, true);
  document.addEventListener("pointerdown", () => { state.keyboard = false; }, true);
  root.addEventListener("click", onClick);
  root.addEventListener("keydown", onKeyDown);
  root.addEventListener("pointerdown", onPointerDown);
  const body = document.body;
  body.addEventListener("htmx:configRequest", onConfigRequest);
  body.addEventListener("htmx:beforeRequest", onBeforeRequest);
  body.addEventListener("htmx:beforeSwap", onBeforeSwap);
  body.addEventListener("htmx:afterSettle", onAfterSettle);
  body.addEventListener("htmx:afterRequest", onAfterRequest);
  body.addEventListener("htmx:sendError", () => problem(LOST));
  body.addEventListener("htmx:timeout", () => problem(LOST));
  // The database out of reach (503) comes with its own words (web/middleware.py).
  body.addEventListener("htmx:responseError", (e) =>
    problem(e.detail.xhr.getResponseHeader("X-Glabella-Message") || failed(e.detail.xhr.status)));
}

// --- requests --------------------------------------------------------------------------------

function send(verb, url, values) {
  return htmx
    .ajax(verb, url, { source: root, target: "#workspace", swap: "outerHTML", values })
    .catch(() => {}); // reported by the htmx:sendError handler
}

function addPoint(diagram, x, y) {
  send("POST", workspace().dataset.pointsUrl, {
    diagram, x: fixed(x), y: fixed(y), units: state.units, depth: state.depth,
  });
}

function movePoint(number, diagram, x, y) {
  send("POST", `${workspace().dataset.pointsUrl}${number}/`, {
    diagram, x: fixed(clamp(x)), y: fixed(clamp(y)),
  });
}

function select(number) {
  send("GET", workspace().dataset.sessionUrl, { select: number });
}

function onConfigRequest(event) {
  const w = workspace();
  if (!w || !root.contains(event.detail.elt)) return;
  const p = event.detail.parameters;
  // The version the page shows now (a queued tap is sent after the previous one has
  // answered, with the version that answer brought).
  if (event.detail.verb !== "get" && p.version === undefined) p.version = w.dataset.version;
  if (p.ui_diagram === undefined) p.ui_diagram = w.dataset.diagram;
  if (p.ui_units === undefined) p.ui_units = state.units;
  if (p.ui_depth === undefined) p.ui_depth = state.depth;
}

function onBeforeRequest(event) {
  if (!root.contains(event.detail.elt)) return;
  // Before htmx disables the submit button (which would drop the focus).
  state.focusBefore = focusKey(document.activeElement);
  const w = workspace();
  if (w) w.classList.add("is-busy");
}

function onAfterRequest(event) {
  const w = workspace();
  if (w) w.classList.remove("is-busy");
  if (event.detail.successful && root.contains(event.detail.elt)) hideBanner();
}

// --- keeping the keyboard user's place across a re-render ------------------------------------

function focusKey(el) {
  if (!el || el === document.body || !root.contains(el)) return null;
  if (el.id) return `#${CSS.escape(el.id)}`;
  if (el.dataset && el.dataset.region) return `[data-region="${CSS.escape(el.dataset.region)}"]`;
  return null;
}

function onBeforeSwap(event) {
  if (event.detail.target && event.detail.target.id === "workspace") {
    state.focusBefore = focusKey(document.activeElement) || state.focusBefore;
  }
}

function onAfterSettle() {
  const w = workspace();
  if (!w || w.dataset.seen) return;
  w.dataset.seen = "1";
  // The workspace (and its message) is new: say the message through the lasting live region.
  const note = w.querySelector("#ws-note");
  const live = document.getElementById("chart-live");
  if (note && live) live.textContent = note.textContent.replace(/\s+/g, " ").trim();
  const before = state.focusBefore;
  state.focusBefore = null;
  if (!state.keyboard) return;
  const hint = w.dataset.focus ? document.getElementById(w.dataset.focus) : null;
  const target = hint || (before && w.querySelector(before)) || w.querySelector("#points-title");
  if (target) {
    if (!target.hasAttribute("tabindex") && !target.matches("a, button, input, select, textarea")) {
      target.setAttribute("tabindex", "-1");
    }
    target.focus();
  }
}

// --- the unit and depth buttons (no point selected) ------------------------------------------

function onClick(event) {
  const units = event.target.closest("[data-next-units]");
  if (units) {
    state.units = units.dataset.nextUnits;
    press(units, "[data-next-units]");
    return;
  }
  const depth = event.target.closest("[data-next-depth]");
  if (depth) {
    state.depth = depth.dataset.nextDepth;
    press(depth, "[data-next-depth]");
    return;
  }
  if (event.target.closest("[data-dismiss-banner]")) hideBanner();
}

function press(button, selector) {
  const w = workspace();
  for (const b of w.querySelectorAll(selector)) {
    b.setAttribute("aria-pressed", b === button ? "true" : "false");
  }
  w.dataset.units = state.units;
  w.dataset.depth = state.depth;
  const addUnits = document.getElementById("add-units");
  if (addUnits) addUnits.value = state.units;
  const addDepth = document.getElementById("add-depth");
  if (addDepth) addDepth.value = state.depth;
}

// --- keyboard on the diagram -----------------------------------------------------------------

function onKeyDown(event) {
  if (event.key === "Escape" && workspace() && workspace().dataset.selected) {
    event.preventDefault();
    select("");
    return;
  }
  const region = event.target.closest && event.target.closest(".region");
  if (!region || readonly() || (event.key !== "Enter" && event.key !== " ")) return;
  event.preventDefault();
  addPoint(region.ownerSVGElement.dataset.diagram, region.dataset.x, region.dataset.y);
}

// --- taps and drags on the diagram -----------------------------------------------------------

function toSvg(svg, clientX, clientY) {
  return new DOMPoint(clientX, clientY).matrixTransform(svg.getScreenCTM().inverse());
}

function nearestPoint(svg, clientX, clientY) {
  const ctm = svg.getScreenCTM();
  const aspect = Number(svg.dataset.aspect) || 1;
  let best = null;
  let bestDistance = Math.max(HIT_PX, 4 * ctm.a);
  for (const g of svg.querySelectorAll(".point")) {
    const p = new DOMPoint(Number(g.dataset.x), Number(g.dataset.y) * aspect).matrixTransform(ctm);
    const distance = Math.hypot(p.x - clientX, p.y - clientY);
    if (distance <= bestDistance) {
      best = g;
      bestDistance = distance;
    }
  }
  return best;
}

function onPointerDown(event) {
  const svg = event.target.closest && event.target.closest("svg.diagram");
  if (!svg || readonly() || !workspace().contains(svg)) return;
  if (!event.isPrimary || (event.pointerType === "mouse" && event.button !== 0)) return;
  event.preventDefault(); // no text selection, no focus ring on a tapped area
  state.drag = {
    svg,
    point: nearestPoint(svg, event.clientX, event.clientY),
    x0: event.clientX,
    y0: event.clientY,
    moved: false,
    id: event.pointerId,
  };
  svg.setPointerCapture(event.pointerId);
  svg.addEventListener("pointermove", onPointerMove);
  svg.addEventListener("pointerup", onPointerUp);
  svg.addEventListener("pointercancel", endDrag);
}

function onPointerMove(event) {
  const d = state.drag;
  if (!d || event.pointerId !== d.id) return;
  if (!d.moved && Math.hypot(event.clientX - d.x0, event.clientY - d.y0) < DRAG_START_PX) return;
  d.moved = true;
  if (d.point) {
    const a = toSvg(d.svg, d.x0, d.y0);
    const b = toSvg(d.svg, event.clientX, event.clientY);
    d.point.setAttribute("transform", `translate(${b.x - a.x} ${b.y - a.y})`);
    d.point.classList.add("is-dragging");
  }
}

function onPointerUp(event) {
  const d = state.drag;
  if (!d || event.pointerId !== d.id) return;
  endDrag();
  if (d.point && d.moved) {
    const aspect = Number(d.svg.dataset.aspect) || 1;
    const a = toSvg(d.svg, d.x0, d.y0);
    const b = toSvg(d.svg, event.clientX, event.clientY);
    movePoint(
      d.point.dataset.number,
      d.svg.dataset.diagram,
      Number(d.point.dataset.x) + (b.x - a.x),
      Number(d.point.dataset.y) + (b.y - a.y) / aspect,
    );
  } else if (d.point) {
    const number = d.point.dataset.number;
    select(workspace().dataset.selected === number ? "" : number);
  } else if (!d.moved) {
    const aspect = Number(d.svg.dataset.aspect) || 1;
    const p = toSvg(d.svg, event.clientX, event.clientY);
    addPoint(d.svg.dataset.diagram, p.x, p.y / aspect);
  }
}

function endDrag() {
  const d = state.drag;
  if (!d) return;
  d.svg.removeEventListener("pointermove", onPointerMove);
  d.svg.removeEventListener("pointerup", onPointerUp);
  d.svg.removeEventListener("pointercancel", endDrag);
  if (d.svg.hasPointerCapture(d.id)) d.svg.releasePointerCapture(d.id);
  state.drag = null;
}

// --- a lost connection -----------------------------------------------------------------------

function problem(text) {
  const banner = document.getElementById("conn-banner");
  if (!banner) return;
  const message = document.createElement("span");
  message.textContent = text;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = "Dismiss";
  dismiss.dataset.dismissBanner = "1";
  banner.replaceChildren(message, dismiss);
  banner.hidden = false;
  // Put back a point moved on screen but not saved.
  for (const g of document.querySelectorAll("#workspace .point[transform]")) {
    g.removeAttribute("transform");
    g.classList.remove("is-dragging");
  }
  const w = workspace();
  if (w) w.classList.remove("is-busy");
}

function hideBanner() {
  const banner = document.getElementById("conn-banner");
  if (banner) banner.hidden = true;
}

setUp();
