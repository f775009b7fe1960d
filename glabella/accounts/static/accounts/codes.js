/* Recovery codes page: "Print" and "Copy" buttons (no inline script). */
(function () {
  "use strict";
  var print = document.getElementById("codes-print");
  var copy = document.getElementById("codes-copy");
  var list = document.getElementById("recovery-codes");
  var status = document.getElementById("codes-status");
  if (print) {
    print.hidden = false;
    print.addEventListener("click", function () { window.print(); });
  }
  if (copy && list && navigator.clipboard) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      var text = Array.prototype.map.call(list.querySelectorAll("code"), function (c) {
        return c.textContent.trim();
      }).join("\n");
      navigator.clipboard.writeText(text).then(function () {
        if (status) status.textContent = "Copied. Paste them somewhere safe, away from this device.";
      }, function () {
        if (status) status.textContent = "Could not copy: select the codes and copy them yourself.";
      });
    });
  }
})();
