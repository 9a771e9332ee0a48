// The demo page: draw on the canvas (or upload an image), send it to /v1/predict, show the answer.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const ui = Object.fromEntries(["status", "result", "digit", "confidence", "seen", "bars", "error", "file", "clear", "dropzone"]
  .map((id) => [id, document.getElementById(id)]));
let drawing = false;
let dirty = false;

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  dirty = false;
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  const [x, y] = point(event);
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x + 0.1, y + 0.1);
  ctx.stroke();
  dirty = true;
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = point(event);
  ctx.lineTo(x, y);
  ctx.stroke();
});
function endStroke() {
  if (!drawing) return;
  drawing = false;
  if (dirty) pad.toBlob((blob) => predict(blob, "drawing.png"), "image/png");
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);
pad.addEventListener("keydown", (event) => {
  if (event.key === "Delete" || event.key === "Backspace" || event.key === "Escape") { clearPad(); showIdle(); }
});

ui.clear.addEventListener("click", () => { clearPad(); showIdle(); pad.focus(); });
ui.file.addEventListener("change", () => { if (ui.file.files.length) predict(ui.file.files[0], ui.file.files[0].name); });
ui.dropzone.addEventListener("dragover", (event) => { event.preventDefault(); ui.dropzone.classList.add("over"); });
ui.dropzone.addEventListener("dragleave", () => ui.dropzone.classList.remove("over"));
ui.dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  ui.dropzone.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) predict(file, file.name);
});

function showIdle() {
  ui.result.hidden = true;
  ui.error.hidden = true;
  ui.status.textContent = "Draw a digit to start.";
}

async function predict(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  ui.status.textContent = "Asking the model…";
  try {
    const response = await fetch("/v1/predict?explain=true", { method: "POST", body: form });
    const body = await response.json().catch(() => ({ detail: `The server answered ${response.status} without JSON.` }));
    if (!response.ok) throw new Error(body.detail || body.error || `The server answered ${response.status}.`);
    show(body);
  } catch (error) {
    ui.result.hidden = true;
    ui.error.textContent = error.message;
    ui.error.hidden = false;
    ui.status.textContent = "The API refused this image:";
  }
}

function show(prediction) {
  ui.error.hidden = true;
  ui.result.hidden = false;
  ui.status.textContent = prediction.notes.length ? `Preprocessing: ${prediction.notes.join("; ")}.` : "";
  ui.digit.textContent = String(prediction.digit);
  ui.confidence.textContent = `${(prediction.confidence * 100).toFixed(1)}% sure`;
  ui.seen.src = prediction.input_image;
  ui.bars.replaceChildren(...prediction.probabilities.map((p, digit) => {
    const item = document.createElement("li");
    item.className = digit === prediction.digit ? "top" : "";
    item.dataset.digit = String(digit);
    item.innerHTML = `<span>${digit}</span><span class="track"><span class="fill" style="width:${(p * 100).toFixed(1)}%"></span></span><span class="p">${(p * 100).toFixed(1)}%</span>`;
    item.setAttribute("aria-label", `digit ${digit}: ${(p * 100).toFixed(1)} percent`);
    return item;
  }));
}

ctx.lineWidth = 18;
ctx.lineCap = "round";
ctx.lineJoin = "round";
ctx.strokeStyle = "#111";
clearPad();
