// The demo page: draw on the canvas, or pick or drop an image file; each is sent to
// POST /v1/predict?explain=true and the answer is shown: digit, confidence, ten bars, and
// `input_image`, the 28x28 image the model saw (the API adds it because of explain=true). When the model has a
// digit scorer, the answer also has `digit_score` (shown as digit-likeness) and `is_digit`: when that is false,
// the page says the image doesn't look like a digit, above the best guess and its bars.
// In number mode the pad is 3:1 and nothing is sent per stroke: Read (or Enter on the pad) sends the drawing, and
// an uploaded file goes at once, to POST /v1/read; the page shows the text read, its confidence, each digit with
// its confidence, and over the drawing the box of each digit and of each mark (a point, a comma, a dash...).
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const ui = Object.fromEntries(
  ["results", "status", "verdict", "result", "digit", "confidence", "digit-score", "seen", "bars", "error",
    "error-title", "error-detail", "file", "clear", "dropzone", "read", "boxes", "reading", "text",
    "reading-confidence", "digits", "marks", "draw-title", "result-title", "pad-help"]
    .map((id) => [id.replace("-", "_"), document.getElementById(id)]));
const modes = document.querySelectorAll("input[name=mode]");
let drawing = false;   // a stroke is in progress
let preview = false;   // the pad shows an uploaded file; the next stroke starts on a clean pad
let latest = 0;        // id of the newest request: answers to older ones (or from before a Clear) are dropped
let mode = "digit";    // "digit": each stroke asks /v1/predict; "number": Read asks /v1/read
// where an image sent lies on the pad, in pad pixels, to place the boxes of /v1/read's answer: a drawing is the
// pad itself; an upload is fitted (see showFile)
const ON_PAD = { x: 0, y: 0, scale: 1 };

// what changes with the mode: the pad's size in pixels, its labels, the texts and the endpoint
const MODES = {
  digit: {
    width: 280, title: "Draw a digit, or drop an image", results: "Prediction",
    label: "Drawing area: draw one digit with the mouse, a pen or a finger",
    help: "Draw one digit, large, or pick or drop a photo, scan or screenshot of one. " +
      "Escape or Delete on the drawing area clears it.",
    ready: "Draw a digit: the model's answer appears here.",
    url: "/v1/predict?explain=true", asking: "Asking the model…",
  },
  number: {
    width: 840, title: "Draw a number, or drop an image", results: "Reading",
    label: "Drawing area: draw a whole number with the mouse, a pen or a finger, then press Enter to read it",
    help: "Draw a whole number, its digits side by side (two lines are fine), then press Read, or Enter on the " +
      "drawing area. Or pick or drop a photo, scan or screenshot of one. Escape or Delete on the drawing area clears it.",
    ready: "Draw a number, then press Read: the digits read appear here.",
    url: "/v1/read", asking: "Reading the number…",
  },
};

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  preview = false;
  ui.boxes.replaceChildren();
}

function reset() {
  clearPad();
  latest += 1;
  ui.results.removeAttribute("aria-busy");
  ui.result.hidden = ui.reading.hidden = ui.error.hidden = true;
  ui.verdict.textContent = "";
  ui.status.textContent = MODES[mode].ready;
}

function setMode(name) {
  mode = name;
  const m = MODES[name];
  document.body.dataset.mode = name;
  pad.width = m.width;  // resizing clears the pad and its pen: both are set again
  pen();
  pad.setAttribute("aria-label", m.label);
  ui.draw_title.textContent = m.title;
  ui.result_title.textContent = m.results;
  ui.pad_help.textContent = m.help;
  ui.read.hidden = name !== "number";
  reset();
}

function pen() {
  ctx.lineWidth = 18;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = "#111";
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
  if (mode === "number") {  // the drawing changes: a reading under way is dropped, the last one is stale
    latest += 1;
    ui.results.removeAttribute("aria-busy");
    ui.reading.classList.add("stale");
    ui.boxes.replaceChildren();
  }
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
  if (mode === "number") {  // a number has many strokes: it is read when the user says it is done
    ui.status.textContent = "Press Read (or Enter) when the number is done.";
    return;
  }
  // the page sends exactly what it shows: the canvas, dark ink on white, as a PNG (numbered now: a Clear
  // before the PNG is ready makes it stale)
  const id = ++latest;
  pad.toBlob((blob) => predict(blob, "drawing.png", "Your drawing", id), "image/png");
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);
pad.addEventListener("keydown", (event) => {
  if (["Delete", "Backspace", "Escape"].includes(event.key)) { event.preventDefault(); reset(); }
  if (event.key === "Enter" && mode === "number") { event.preventDefault(); readPad(); }
});
ui.clear.addEventListener("click", () => { reset(); pad.focus(); });
ui.read.addEventListener("click", readPad);
modes.forEach((radio) => radio.addEventListener("change", () => { if (radio.checked) setMode(radio.value); }));

function readPad() {
  const id = ++latest;
  pad.toBlob((blob) => predict(blob, "drawing.png", "Your drawing", id), "image/png");
}

// Files: the picker, or dropped anywhere on the page ---------------------------------------------

function upload(file) {
  clearPad();
  predict(file, file.name, file.name, ++latest, showFile(file));
}

// where the file lies on the pad ({x, y, scale}), once shown there; null if the browser can't decode it
async function showFile(file) {
  try {  // show the upload on the pad, fitted; a file the browser can't decode just leaves it blank
    const bitmap = await createImageBitmap(file);  // turned by its EXIF orientation, as the API does
    const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const [w, h] = [bitmap.width * scale, bitmap.height * scale];
    ctx.imageSmoothingEnabled = scale < 2;  // small images (28x28) stay crisp pixels
    ctx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    preview = true;
    return { x: (pad.width - w) / 2, y: (pad.height - h) / 2, scale };
  } catch {  // the API's answer says what is wrong with the file
    return null;
  }
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

async function predict(blob, filename, source, id = ++latest, placed = ON_PAD) {
  if (id !== latest) return;
  const form = new FormData();
  form.append("file", blob, filename);
  ui.results.setAttribute("aria-busy", "true");
  const reading = mode === "number";
  ui.status.textContent = MODES[mode].asking;
  let response, body;
  try {
    response = await fetch(MODES[mode].url, { method: "POST", body: form });
    body = await response.json().catch(() => null);
  } catch (error) {
    if (id === latest) showError(source, "Could not reach the API:", error.message);
    return;
  }
  if (id !== latest) return;
  if (response.ok && body && reading) {
    const where = await placed;  // an upload may still be decoding for the pad
    if (id === latest) showReading(body, source, where);
  } else if (response.ok && body) show(body, source);
  // errors are {"detail": "...", "code": "..."}: show the API's own sentence
  else if (body && body.detail) showError(source, `The API answered ${response.status} (${body.code || "error"}):`, body.detail);
  else showError(source, `The API answered ${response.status} ${response.statusText}.`, "");
}

function percent(p) { return `${(p * 100).toFixed(1)}%`; }

function show(prediction, source) {
  ui.results.removeAttribute("aria-busy");
  ui.error.hidden = ui.reading.hidden = true;
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

// /v1/read's answer: the text, its confidence, a chip per digit, the marks, and the boxes over the pad, placed
// from the image's pixels (`placed`: where the image lies on the pad) in percent of the pad, so they follow its
// CSS size
function showReading(reading, source, placed) {
  ui.results.removeAttribute("aria-busy");
  ui.error.hidden = ui.result.hidden = true;
  ui.reading.hidden = false;
  ui.reading.classList.remove("stale");
  ui.verdict.textContent = "";
  ui.status.textContent = [source, ...reading.notes].join(" · ");
  ui.text.textContent = reading.text || "no digits";
  ui.text.classList.toggle("none", !reading.text);
  ui.reading_confidence.textContent = `${percent(reading.confidence)} sure`;
  const lines = new Set(reading.digits.map((d) => d.line)).size;
  ui.digits.replaceChildren(...reading.digits.map((d) => {
    const item = document.createElement("li");
    const doubtful = d.is_digit === false;
    if (doubtful) item.className = "doubtful";
    const where = lines > 1 ? `, line ${d.line + 1}` : "";
    item.setAttribute("aria-label", `${d.digit}: ${percent(d.confidence)}${where}` +
      (doubtful ? ", doesn't look like a digit" : ""));
    item.append(Object.assign(document.createElement("span"), { className: "d", textContent: String(d.digit) }),
      Object.assign(document.createElement("span"), { className: "p", textContent: percent(d.confidence) }));
    if (doubtful) item.title = `doesn't look like a digit (digit-likeness ${percent(d.digit_score)})`;
    return item;
  }));
  const marks = reading.marks || [];
  ui.marks.hidden = !marks.length;
  ui.marks.textContent = marks.length ? `Marks, not in the text: ${marks.map((m) => m.char).join(" ")}` : "";
  ui.boxes.replaceChildren();
  if (!placed) return;  // the browser could not show the file: no drawing to put boxes on
  // each box's tag goes above it; on one line, below it when there is no room above; on several lines, below
  // the boxes of the last one only (so that the tags of two lines don't meet between them)
  const last = Math.max(...reading.digits.map((d) => d.line), ...marks.map((m) => m.line));
  const box = (kind, [x, y, w, h], line, tag, data) => {
    const element = Object.assign(document.createElement("div"), { className: `box ${kind}` });
    Object.assign(element.dataset, data);
    const [left, top] = [placed.x + x * placed.scale, placed.y + y * placed.scale];
    Object.assign(element.style, {
      left: `${(100 * left) / pad.width}%`, top: `${(100 * top) / pad.height}%`,
      width: `${(100 * w * placed.scale) / pad.width}%`, height: `${(100 * h * placed.scale) / pad.height}%`,
    });
    if (last > 0 ? line === last : top < 0.12 * pad.height) element.classList.add("below");
    element.append(Object.assign(document.createElement("span"), { className: "tag", textContent: tag }));
    return element;
  };
  ui.boxes.append(
    ...reading.digits.map((d) => box(d.is_digit === false ? "digit doubtful" : "digit", d.box, d.line,
      `${d.digit} ${(d.confidence * 100).toFixed(0)}%`, { digit: d.digit, confidence: d.confidence, line: d.line })),
    ...marks.map((m) => box("mark", m.box, m.line, m.char, { char: m.char, line: m.line })));
}

function showError(source, title, detail) {
  ui.results.removeAttribute("aria-busy");
  ui.result.hidden = ui.reading.hidden = true;
  ui.boxes.replaceChildren();
  ui.verdict.textContent = "";
  ui.status.textContent = source;
  ui.error_title.textContent = title;
  ui.error_detail.textContent = detail;
  ui.error.hidden = false;
}

setMode(document.querySelector("input[name=mode]:checked").value);
