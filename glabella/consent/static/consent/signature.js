// Signature pad for the take-consent page.
//
// A <canvas data-signature-pad> inside a form: pointer events, so a finger, a stylus and
// a mouse all draw; a Clear button; on submit the drawing goes into the hidden
// "signature" input as a PNG data URL. Without a usable canvas (or without this script)
// the page falls back to the paper form. No inline script, no inline handlers.

const INK = "#10233f";
const PAPER = "#ffffff";

function setUp(form) {
  const canvas = form.querySelector("canvas[data-signature-pad]");
  const input = form.querySelector("input[name=signature]");
  const clear = form.querySelector("[data-signature-clear]");
  const state = form.querySelector("[data-signature-state]");
  const drawn = form.querySelector("input[name=method][value=drawn]");
  const paper = form.querySelector("input[name=method][value=paper]");
  const ctx = canvas && canvas.getContext ? canvas.getContext("2d") : null;
  if (!ctx || !window.PointerEvent) {
    if (drawn) drawn.disabled = true;
    if (paper) paper.checked = true;
    return;
  }
  form.classList.add("has-pad");

  let inked = false;
  let activePointer = null;
  let last = null;
  let strokeLength = 0;

  function blank() {
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = Math.max(2.5, canvas.width / 280);
  }

  function say(text) {
    if (state) state.textContent = text;
  }

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * canvas.width) / box.width,
      y: ((event.clientY - box.top) * canvas.height) / box.height,
    };
  }

  function lineTo(p) {
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    strokeLength += Math.hypot(p.x - last.x, p.y - last.y);
    last = p;
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (activePointer !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    activePointer = event.pointerId;
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    ctx.beginPath();
    ctx.arc(last.x, last.y, ctx.lineWidth / 2, 0, Math.PI * 2);
    ctx.fill();
  });

  canvas.addEventListener("pointermove", (event) => {
    if (event.pointerId !== activePointer) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) lineTo(point(e));
  });

  function end(event) {
    if (event.pointerId !== activePointer) return;
    activePointer = null;
    last = null;
    if (strokeLength > 20) {
      inked = true;
      say("Signed. Press Clear to start again.");
      // The earlier "please sign" message no longer applies.
      const section = canvas.closest(".has-error");
      if (section) {
        section.classList.remove("has-error");
        for (const error of section.querySelectorAll(".error")) error.hidden = true;
      }
    }
  }
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  clear.addEventListener("click", () => {
    blank();
    inked = false;
    strokeLength = 0;
    input.value = "";
    say("Cleared. The patient can sign again.");
  });

  form.addEventListener("submit", (event) => {
    if (form.dataset.submitting) {
      // A second tap while the first is on its way: ignore it.
      event.preventDefault();
      return;
    }
    input.value = drawn && drawn.checked && inked ? canvas.toDataURL("image/png") : "";
    form.dataset.submitting = "1";
  });
  // Back/forward cache: the form may be shown again after a submit.
  window.addEventListener("pageshow", () => delete form.dataset.submitting);

  blank();
  // After an error elsewhere on the form the server hands the signature back: show it.
  if (input.value.startsWith("data:image/png;base64,")) {
    const img = new Image();
    img.addEventListener("load", () => {
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      inked = true;
      strokeLength = 100;
      say("Signature kept from before. Press Clear to sign again.");
    });
    img.src = input.value;
  }
}

for (const form of document.querySelectorAll("form[data-take-consent]")) setUp(form);
