// Stock pages: a little help for scanners and double taps. Everything works without it.

// A scanner in keyboard mode may send GS1's group separator as Ctrl+] (ASCII 29) rather
// than as a character: put the character in, so the lot and serial stay apart.
for (const input of document.querySelectorAll("input[data-scanner]")) {
  input.addEventListener("keydown", (event) => {
    if (event.ctrlKey && (event.key === "]" || event.code === "BracketRight")) {
      event.preventDefault();
      const start = input.selectionStart ?? input.value.length;
      const end = input.selectionEnd ?? start;
      input.setRangeText("\u001d", start, end, "end");
    }
  });
}

// A form marked data-once is sent once: a second tap while the first is on its way does
// nothing. (The server spends a one-time token as well; this only saves a round trip.)
for (const form of document.querySelectorAll("form[data-once]")) {
  form.addEventListener("submit", (event) => {
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    // Disable after the browser has collected the form's data (the pressed button included).
    setTimeout(() => {
      for (const button of form.querySelectorAll("button[type=submit], button:not([type])")) {
        button.setAttribute("aria-disabled", "true");
        button.disabled = true;
      }
    }, 0);
  });
}

// Show only the vial sizes the chosen product comes in.
for (const select of document.querySelectorAll("select[data-sizes-for]")) {
  const product = document.getElementById(select.dataset.sizesFor);
  const table = JSON.parse(select.dataset.sizes || "{}");
  if (!product) continue;
  const update = () => {
    const sizes = (table[product.value] || "").split(" ").filter(Boolean);
    for (const option of select.options) {
      if (!option.value) continue;
      option.hidden = sizes.length > 0 && !sizes.includes(option.value);
    }
    if (select.selectedOptions[0]?.hidden) select.value = "";
    if (sizes.length === 1 && !select.value) select.value = sizes[0];
  };
  product.addEventListener("change", update);
  update();
}

// Choosing a clinic in a switcher shows that clinic at once.
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.requestSubmit());
}
