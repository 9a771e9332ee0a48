// The demo page: draw on the canvas, or pick or drop an image file; each is sent to
// POST /v1/predict?explain=true and the answer is shown: digit, confidence, ten bars, and
// `input_image`, the 28x28 image the model saw (the API adds it because of explain=true). When the model has a
// digit scorer, the answer also has `digit_score` (shown as digit-likeness) and `is_digit`: when that is false,
// the page says the image doesn't look like a digit, above the best guess and its bars.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const ui = Object.fromEntries(
  ["results", "status", "verdict", "result", "digit", "confidence", "digit-score", "seen", "bars", "error",
    "error-title", "error-detail", "file", "clear", "dropzone"].map((id) => [id.replace("-", "_"), document.getElementById(id)]));
let drawing = false;   // a stroke is in progress
let preview = false;   // the pad shows an uploaded file; the next stroke starts on a clean pad
let latest = 0;        // id of the newest request: answers to older ones (or from before a Clear) are dropped

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  preview = false;
}

function reset() {
  clearPad();
  latest += 1;
  ui.results.removeAttribute("aria-busy");
  ui.result.hidden = ui.error.hidden = true;
  ui.verdict.textContent = "";
  ui.status.textContent = "Draw a digit: the model's answer appears here.";
}

// Drawing: pointer events cover mouse, pen and touch alike ---------------------------------------

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}

pad.addEventListener("pointerdown", (event) => {
  if (!event.isPrimary || (event.pointerType === "mouse" && event.button !== 0)) return;
  event.preventDefault();  // no text selection or scrolling while drawing
  pad.focus({ preventScroll: true, focusVisible: false });  // Escape then clears it; no ring for a pointer
  if (preview) clearPad();
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  const [x, y] = point(event);
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x + 0.1, y + 0.1);  // a tap leaves a dot
  ctx.stroke();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing || !event.isPrimary) return;
  const [x, y] = point(event);
  ctx.lineTo(x, y);
  ctx.stroke();
});
function endStroke(event) {
  if (!drawing || !event.isPrimary) return;
  drawing = false;
  // the page sends exactly what it shows: the canvas, dark ink on white, as a PNG (numbered now: a Clear
  // before the PNG is ready makes it stale)
  const id = ++latest;
  pad.toBlob((blob) => predict(blob, "drawing.png", "Your drawing", id), "image/png");
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);
pad.addEventListener("keydown", (event) => {
  if (["Delete", "Backspace", "Escape"].includes(event.key)) { event.preventDefault(); reset(); }
});
ui.clear.addEventListener("click", () => { reset(); pad.focus(); });

// Files: the picker, or dropped anywhere on the page ---------------------------------------------

async function upload(file) {
  predict(file, file.name, file.name);
  clearPad();
  try {  // show the upload on the pad, fitted; a file the browser can't decode just leaves it blank
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const [w, h] = [bitmap.width * scale, bitmap.height * scale];
    ctx.imageSmoothingEnabled = scale < 2;  // small images (28x28) stay crisp pixels
    ctx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    preview = true;
  } catch { /* the API's answer says what is wrong with the file */ }
}

ui.file.addEventListener("change", () => {
  if (ui.file.files.length) upload(ui.file.files[0]);
  ui.file.value = "";  // picking the same file again is a new upload
});
document.addEventListener("dragover", (event) => { event.preventDefault(); ui.dropzone.classList.add("over"); });
document.addEventListener("dragleave", (event) => { if (!event.relatedTarget) ui.dropzone.classList.remove("over"); });
document.addEventListener("drop", (event) => {
  event.preventDefault();  // otherwise the browser leaves the page to open the file
  ui.dropzone.classList.remove("over");
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (file) upload(file);
});

// The API ------------------------------------------------------------------------------------------

async function predict(blob, filename, source, id = ++latest) {
  if (id !== latest) return;
  const form = new FormData();
  form.append("file", blob, filename);
  ui.results.setAttribute("aria-busy", "true");
  ui.status.textContent = "Asking the model…";
  let response, body;
  try {
    response = await fetch("/v1/predict?explain=true", { method: "POST", body: form });
    body = await response.json().catch(() => null);
  } catch (error) {
    if (id === latest) showError(source, "Could not reach the API:", error.message);
    return;
  }
  if (id !== latest) return;
  if (response.ok && body) show(body, source);
  // errors are {"detail": "...", "code": "..."}: show the API's own sentence
  else if (body && body.detail) showError(source, `The API answered ${response.status} (${body.code || "error"}):`, body.detail);
  else showError(source, `The API answered ${response.status} ${response.statusText}.`, "");
}

function percent(p) { return `${(p * 100).toFixed(1)}%`; }

function show(prediction, source) {
  ui.results.removeAttribute("aria-busy");
  ui.error.hidden = true;
  ui.result.hidden = false;
  ui.status.textContent = [source, ...prediction.notes].join(" · ");
  ui.digit.textContent = String(prediction.digit);
  ui.confidence.textContent = `${percent(prediction.confidence)} sure`;
  // both absent when the model has no digit scorer: then the page is as it always was
  const scored = typeof prediction.digit_score === "number";
  ui.digit_score.hidden = !scored;
  ui.digit_score.textContent = scored ? `digit-likeness ${percent(prediction.digit_score)}` : "";
  const doubtful = prediction.is_digit === false;
  ui.result.classList.toggle("doubtful", doubtful);
  ui.verdict.textContent = doubtful ? `This doesn't look like a digit; best guess: ${prediction.digit}` : "";
  ui.seen.src = prediction.input_image;
  ui.bars.replaceChildren(...prediction.probabilities.map((p, digit) => {
    const item = document.createElement("li");
    if (digit === prediction.digit) item.className = "top";
    item.setAttribute("aria-label", `digit ${digit}: ${percent(p)}`);
    const label = Object.assign(document.createElement("span"), { className: "d", textContent: String(digit) });
    const track = Object.assign(document.createElement("span"), { className: "track" });
    const fill = Object.assign(document.createElement("span"), { className: "fill" });
    fill.style.width = percent(p);
    track.append(fill);
    const value = Object.assign(document.createElement("span"), { className: "p", textContent: percent(p) });
    item.append(label, track, value);
    return item;
  }));
}

function showError(source, title, detail) {
  ui.results.removeAttribute("aria-busy");
  ui.result.hidden = true;
  ui.verdict.textContent = "";
  ui.status.textContent = source;
  ui.error_title.textContent = title;
  ui.error_detail.textContent = detail;
  ui.error.hidden = false;
}

ctx.lineWidth = 18;
ctx.lineCap = "round";
ctx.lineJoin = "round";
ctx.strokeStyle = "#111";
reset();
