/* Idle sign-out for signed-in pages (loaded by web/base.html; no inline script).
 *
 * The server ends a session after <body data-idle-seconds> without a request. This script
 * keeps the page honest about it: user activity (keys, pointer, touch, scroll) keeps the
 * session alive with a cheap ping (data-idle-ping) at most every few seconds' worth; a
 * minute before the end (half the time when it is shorter) a warning offers "Stay signed
 * in"; at the end the page signs out (POST to data-idle-logout) and shows the sign-in page
 * with a message, so a tablet left on a counter stops showing a patient.
 * An htmx request answered 401 with HX-Redirect (the session ended on the server) sends the
 * whole page to the sign-in page: htmx follows HX-Redirect itself.
 */
(function () {
  "use strict";
  var body = document.body;
  var total = parseInt(body.getAttribute("data-idle-seconds") || "0", 10);
  if (!total || total <= 0) return;
  var pingUrl = body.getAttribute("data-idle-ping");
  var logoutUrl = body.getAttribute("data-idle-logout");
  var loginUrl = body.getAttribute("data-idle-login");
  var warnLead = Math.min(60, Math.floor(total / 2));
  var keepAlive = Math.max(1, Math.min(60, Math.floor(total / 4)));

  var lastServer = Date.now();   // when the server last saw a request from this page
  var activeSince = false;       // user activity since then
  var ending = false;
  var warning = null;
  var countdown = null;

  function csrfToken() {
    try {
      return JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  function buildWarning() {
    warning = document.createElement("div");
    warning.className = "idle-warning";
    warning.id = "idle-warning";
    warning.setAttribute("role", "alertdialog");
    warning.setAttribute("aria-live", "assertive");
    warning.setAttribute("aria-labelledby", "idle-warning-text");
    warning.hidden = true;
    var p = document.createElement("p");
    p.id = "idle-warning-text";
    p.appendChild(document.createTextNode("You will be signed out in "));
    countdown = document.createElement("strong");
    p.appendChild(countdown);
    p.appendChild(document.createTextNode(" to protect patient data."));
    var stay = document.createElement("button");
    stay.type = "button";
    stay.className = "primary";
    stay.textContent = "Stay signed in";
    stay.addEventListener("click", function () { ping(); hideWarning(); });
    warning.appendChild(p);
    warning.appendChild(stay);
    body.appendChild(warning);
  }

  function hideWarning() {
    if (warning && !warning.hidden) warning.hidden = true;
  }

  function seconds(n) { return n === 1 ? "1 second" : n + " seconds"; }

  function toLogin() {
    var here = window.location.pathname + window.location.search;
    window.location.assign(loginUrl + "?idle=1&next=" + encodeURIComponent(here));
  }

  function signOut() {
    if (ending) return;
    ending = true;
    var here = window.location.pathname + window.location.search;
    var form = document.createElement("form");
    form.method = "post";
    form.action = logoutUrl;
    form.hidden = true;
    [["csrfmiddlewaretoken", csrfToken()],
     ["next", loginUrl + "?idle=1&next=" + encodeURIComponent(here)]].forEach(function (kv) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = kv[0];
      input.value = kv[1];
      form.appendChild(input);
    });
    body.appendChild(form);
    form.submit();
  }

  function ping() {
    lastServer = Date.now();
    activeSince = false;
    fetch(pingUrl, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { if (r.status === 401) { ending = true; toLogin(); } })
      .catch(function () { /* offline: the timer still ends the page */ });
  }

  function activity() {
    if (ending) return;
    activeSince = true;
    hideWarning();
  }

  function tick() {
    if (ending) return;
    var now = Date.now();
    if (activeSince && now - lastServer >= keepAlive * 1000) ping();
    var left = Math.ceil((lastServer + total * 1000 - now) / 1000);
    if (left <= 0) { signOut(); return; }
    if (left <= warnLead) {
      if (!warning) buildWarning();
      countdown.textContent = seconds(left);
      if (warning.hidden) { warning.hidden = false; }
    }
  }

  ["keydown", "pointerdown", "touchstart", "wheel", "input"].forEach(function (name) {
    document.addEventListener(name, activity, { passive: true, capture: true });
  });
  // Every htmx request reaches the server, which pushes the expiry forward.
  document.addEventListener("htmx:afterRequest", function () { lastServer = Date.now(); activeSince = false; hideWarning(); });
  window.addEventListener("pageshow", tick);
  document.addEventListener("visibilitychange", tick);
  window.setInterval(tick, 1000);
})();
