// The take-a-photo page: the tablet's camera with a guide overlay, or a file chooser.
//
// With a camera (getUserMedia) the live picture is shown with the previous photo of the same
// patient, area and view laid over it, see-through (opacity slider), so the new photo lines
// up with the old one. "Take the photo" draws the video frame onto a canvas, makes a JPEG of
// it and puts it into the form's file input, so the form posts exactly as an upload does
// (the server re-encodes it and removes any metadata). Without a camera, or when permission
// is refused, the file input (capture="environment") stays the way to add a photo, with the
// previous photo shown beside it for reference. No inline script, no inline handlers.

const JPEG_QUALITY = 0.92;

function setUp(form) {
  const guides = JSON.parse(form.dataset.guides || "{}");
  const area = form.querySelector("[name=area]");
  const views = form.querySelectorAll("[name=view]");
  const fileInput = form.querySelector("input[type=file][name=photo]");
  const source = form.querySelector("input[name=source]");
  const camera = form.querySelector("[data-camera]");
  const stage = form.querySelector("[data-camera-stage]");
  const video = form.querySelector("[data-video]");
  const guide = form.querySelector("[data-guide]");
  const preview = form.querySelector("[data-preview]");
  const guideControls = form.querySelector("[data-guide-controls]");
  const opacity = form.querySelector("[data-opacity]");
  const state = form.querySelector("[data-camera-state]");
  const start = form.querySelector("[data-start]");
  const capture = form.querySelector("[data-capture]");
  const retake = form.querySelector("[data-retake]");
  const canvas = form.querySelector("[data-canvas]");
  const reference = form.querySelector("[data-reference]");
  const referenceImg = form.querySelector("[data-reference-img]");
  const referenceCaption = form.querySelector("[data-reference-caption]");
  let stream = null;
  let previewUrl = null;

  function say(text) {
    if (state) state.textContent = text;
  }

  function currentGuide() {
    const view = [...views].find((v) => v.checked);
    if (!area || !area.value || !view) return null;
    return guides[`${area.value}|${view.value}`] || null;
  }

  function showGuide() {
    const g = currentGuide();
    if (reference) {
      reference.hidden = !g || Boolean(stream);
      if (g && !stream) {
        referenceImg.src = g.url;
        referenceImg.alt = g.label;
        referenceCaption.textContent = g.label;
      }
    }
    if (guide) {
      guide.hidden = !g || !stream;
      if (g) guide.src = g.url;
      if (guideControls) guideControls.hidden = !g || !stream;
    }
  }

  function setOpacity() {
    if (guide && opacity) guide.style.opacity = String(Number(opacity.value) / 100);
  }

  function stop() {
    if (stream) {
      for (const track of stream.getTracks()) track.stop();
      stream = null;
    }
  }

  async function startCamera() {
    say("Starting the camera…");
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: "environment", width: { ideal: 1920 }, height: { ideal: 1440 } },
      });
    } catch (error) {
      stream = null;
      camera.hidden = true;
      say("");
      const note = document.createElement("p");
      note.className = "notice";
      note.setAttribute("role", "status");
      note.textContent =
        "The camera could not be started (no camera, or permission was refused). " +
        "Choose a photo file below instead.";
      camera.after(note);
      showGuide();
      return;
    }
    video.srcObject = stream;
    stage.hidden = false;
    start.hidden = true;
    capture.hidden = false;
    say("Line the patient up with the guide, then take the photo.");
    showGuide();
  }

  function clearCapture() {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    preview.hidden = true;
    retake.hidden = true;
    capture.hidden = !stream;
    if (fileInput) fileInput.value = "";
    if (source) source.value = "upload";
  }

  function takePhoto() {
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) {
      say("The camera is not ready yet: wait a moment and try again.");
      return;
    }
    canvas.width = width;
    canvas.height = height;
    canvas.getContext("2d").drawImage(video, 0, 0, width, height);
    canvas.toBlob(
      (blob) => {
        if (!blob) {
          say("The photo could not be made: try again, or choose a file.");
          return;
        }
        const file = new File([blob], "camera.jpg", { type: "image/jpeg" });
        const transfer = new DataTransfer();
        transfer.items.add(file);
        fileInput.files = transfer.files;
        if (source) source.value = "camera";
        if (previewUrl) URL.revokeObjectURL(previewUrl);
        previewUrl = URL.createObjectURL(blob);
        preview.src = previewUrl;
        preview.hidden = false;
        capture.hidden = true;
        retake.hidden = false;
        say("Photo taken. Check it, then save it (or take it again).");
      },
      "image/jpeg",
      JPEG_QUALITY,
    );
  }

  if (area) area.addEventListener("change", showGuide);
  for (const v of views) v.addEventListener("change", showGuide);
  if (opacity) opacity.addEventListener("input", setOpacity);
  if (fileInput) {
    fileInput.addEventListener("change", () => {
      if (source) source.value = "upload";
    });
  }
  setOpacity();
  showGuide();

  const canCapture =
    navigator.mediaDevices &&
    typeof navigator.mediaDevices.getUserMedia === "function" &&
    typeof DataTransfer === "function" &&
    canvas &&
    canvas.getContext;
  if (!canCapture || !camera || !fileInput) return;
  camera.hidden = false;
  start.addEventListener("click", startCamera);
  capture.addEventListener("click", takePhoto);
  retake.addEventListener("click", clearCapture);
  window.addEventListener("pagehide", stop);
}

for (const form of document.querySelectorAll("form[data-take-photo]")) setUp(form);
