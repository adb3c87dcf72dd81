// The preview's control page. The composition runs in an iframe on another origin; this page
// asks it for frames by postMessage (see bridge.js), one at a time, and shows only frames the
// composition reports as drawn. The address bar holds the state: ?token, frame, in, out, zoom.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
const $ = (id) => document.getElementById(id);
const slider = $("frame");

let config = null; // /api/state
let iframe = null;
let ready = false; // the composition in the iframe has loaded and answers
let busy = false; // a frame was asked for and is not shown yet
let shown = null; // the frame the composition shows
let wanted = Number(params.get("frame")) || 0; // the frame asked for
let failed = null; // a frame that failed: not asked again until another is wanted
let request = 0; // id of the last frame asked for
let version = -1; // of the served folder, as loaded
let playing = null; // { start (ms), first (frame), last (frame asked), dropped }
const loop = { in: numberParam("in"), out: numberParam("out") };
const timings = []; // ms from asking to shown, for the last frames

function numberParam(name) {
  const value = params.get(name);
  return value === null || value === "" ? null : Number(value);
}

async function api(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: { "X-Helios-Token": token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

const fps = () => config.fps[0] / config.fps[1];
const timeOf = (frame) => (frame * config.fps[1]) / config.fps[0];
const clamp = (frame) => Math.max(0, Math.min(config.frames - 1, Math.round(frame)));

function say(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function problem(text) {
  const item = document.createElement("li");
  item.textContent = text;
  $("problems").append(item);
  $("problem-count").textContent = String($("problems").children.length);
  $("problems-panel").open = true;
}

function saveAddress() {
  const next = new URLSearchParams({ token, frame: String(wanted) });
  if (loop.in !== null) next.set("in", String(loop.in));
  if (loop.out !== null) next.set("out", String(loop.out));
  if ($("actual-size").checked) next.set("zoom", "100");
  history.replaceState(null, "", `?${next}`);
}

function showPosition() {
  $("position").textContent = `f ${wanted} · ${timeOf(wanted).toFixed(3)} s`;
  slider.value = String(wanted);
  document.body.dataset.wanted = String(wanted);
  document.body.dataset.shown = shown === null ? "" : String(shown);
}

// ---- the composition ----------------------------------------------------------------------
function loadComposition() {
  const frame = document.createElement("iframe");
  frame.title = "composition";
  frame.width = String(config.width);
  frame.height = String(config.height);
  frame.setAttribute("scrolling", "no");
  frame.src = config.composition;
  $("box").replaceChildren(frame);
  iframe = frame;
  ready = false;
  busy = false;
  shown = null;
  failed = null;
  version = config.version;
  document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1);
  showPosition();
  fit();
}

function fit() {
  if (!iframe) return;
  const actual = $("actual-size").checked;
  document.body.classList.toggle("actual", actual);
  const stage = $("stage");
  const scale = actual ? 1 : Math.min(stage.clientWidth / config.width, stage.clientHeight / config.height);
  iframe.style.transform = scale === 1 ? "" : `scale(${scale})`;
  $("box").style.width = `${config.width * scale}px`;
  $("box").style.height = `${config.height * scale}px`;
}

function pump() {
  if (!ready || busy || wanted === shown || wanted === failed) return;
  busy = true;
  request += 1;
  asked = performance.now();
  iframe.contentWindow.postMessage({ helios: "preview", type: "show", frame: wanted, id: request }, config.compositionOrigin);
}
let asked = 0;

window.addEventListener("message", (event) => {
  if (!iframe || event.source !== iframe.contentWindow || event.origin !== config.compositionOrigin) return;
  const message = event.data;
  if (!message || message.helios !== "preview") return;
  switch (message.type) {
    case "ready":
      ready = true;
      say("");
      pump();
      break;
    case "replaying":
      say(`replaying: frame ${message.frame} needs the frames before it run first (${message.done}/${message.total})`);
      break;
    case "reload": // an earlier frame: virtual time only runs forward
      loadComposition();
      break;
    case "shown":
      if (message.id !== request) break;
      busy = false;
      shown = message.frame;
      timings.push(performance.now() - asked);
      if (timings.length > 50) timings.shift();
      if (!playing) say(`frame ${shown} in ${Math.round(performance.now() - asked)} ms`);
      showPosition();
      if (playing) advance();
      pump();
      break;
    case "failed":
      busy = false;
      failed = message.frame;
      say(`frame ${message.frame} failed`, true);
      problem(message.text);
      stop();
      break;
    case "problem":
      problem(message.text);
      break;
  }
});

// ---- moving -----------------------------------------------------------------------------
function go(frame) {
  wanted = clamp(frame);
  showPosition();
  saveAddress();
  pump();
}

function step(delta) {
  stop();
  go(wanted + delta);
}

function range() {
  const first = loop.in === null ? 0 : loop.in;
  const last = loop.out === null ? config.frames - 1 : loop.out;
  return first <= last ? [first, last] : [last, first];
}

// Play: real time at the composition's fps, exact frames only. The next frame asked for is
// the one due now; those passed over while a frame was drawn are counted as dropped.
function play() {
  const [first, last] = range();
  const from = wanted >= last || wanted < first ? first : wanted;
  playing = { start: performance.now(), first: from, last: from, dropped: 0, drawn: 0 };
  $("play").textContent = "Pause";
  go(from);
  requestAnimationFrame(tick);
}

function stop() {
  if (!playing) return;
  say(`paused: ${playing.drawn} frames drawn, ${playing.dropped} dropped`);
  document.body.dataset.played = `${playing.drawn} ${playing.dropped}`;
  playing = null;
  $("play").textContent = "Play";
}

function advance() {
  if (!playing || busy) return;
  playing.drawn += 1;
  const [first, last] = range();
  let due = playing.first + Math.floor(((performance.now() - playing.start) * fps()) / 1000);
  if (due > last) { // loop
    playing.start = performance.now();
    playing.first = first;
    playing.last = first - 1;
    due = first;
  }
  if (due <= playing.last) due = playing.last + 1 > last ? first : playing.last + 1;
  if (due > playing.last + 1) playing.dropped += due - playing.last - 1;
  playing.last = due;
  say(`playing: ${playing.dropped} frames dropped`);
  document.body.dataset.dropped = String(playing.dropped);
  go(due);
}

function tick() {
  if (!playing) return;
  if (!busy && shown === wanted) advance();
  requestAnimationFrame(tick);
}

// ---- controls ---------------------------------------------------------------------------
slider.addEventListener("input", () => { stop(); go(Number(slider.value)); });
$("play").addEventListener("click", () => (playing ? stop() : play()));
$("mark-in").addEventListener("click", () => { loop.in = wanted; loopText(); saveAddress(); });
$("mark-out").addEventListener("click", () => { loop.out = wanted; loopText(); saveAddress(); });
$("actual-size").addEventListener("change", () => { fit(); saveAddress(); });
new ResizeObserver(fit).observe($("stage"));

function loopText() {
  $("loop-text").textContent = loop.in === null && loop.out === null ? "loop: all" : `loop: ${range().join("–")}`;
}

window.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target && (target.localName === "textarea" || (target.localName === "input" && target.type !== "range" && target.type !== "checkbox"))) return;
  const second = Math.max(1, Math.round(fps()));
  const moves = {
    ArrowRight: event.shiftKey ? second : 1,
    ArrowLeft: event.shiftKey ? -second : -1,
  };
  if (event.key in moves) step(moves[event.key]);
  else if (event.key === "Home") { stop(); go(0); }
  else if (event.key === "End") { stop(); go(config.frames - 1); }
  else if (event.key === " ") { if (playing) stop(); else play(); }
  else if (event.key === "i") $("mark-in").click();
  else if (event.key === "o") $("mark-out").click();
  else return;
  event.preventDefault();
}, true);

$("still").addEventListener("click", async () => {
  const frame = shown === null ? wanted : shown;
  say(`making a still of frame ${frame}…`);
  try {
    const { path } = await api("/api/still", { frame });
    say(`wrote ${path}`);
  } catch (error) {
    say(`still failed: ${error.message}`, true);
  }
});

$("render").addEventListener("click", async () => {
  try {
    await api("/api/render", {});
    renderState({ state: "running", progress: 0, stage: "launching", message: "" });
  } catch (error) {
    renderState({ state: "failed", progress: 0, stage: "", message: error.message });
  }
});
$("cancel").addEventListener("click", () => api("/api/cancel", {}).catch((error) => problem(error.message)));

function renderState(render) {
  if (!render) return;
  const running = render.state === "running";
  $("cancel").hidden = !running;
  $("render").disabled = running;
  $("render-progress").hidden = false;
  $("render-progress").value = render.progress;
  const percent = `${Math.floor(render.progress * 100)} %`;
  $("render-text").textContent = running ? `${render.stage} ${percent}` : `${render.state} ${percent}: ${render.message}`;
  $("render-text").classList.toggle("error", render.state === "failed");
  document.body.dataset.render = render.state;
  document.body.dataset.renderProgress = String(render.progress);
}

$("apply-props").addEventListener("click", async () => {
  let props;
  try {
    props = JSON.parse($("props").value || "null");
  } catch (error) {
    $("props-note").textContent = `not JSON: ${error.message}`;
    $("props-note").className = "error";
    return;
  }
  try {
    await api("/api/props", { props });
    config.props = props;
    $("props-note").textContent = "applied";
    $("props-note").className = "";
    loadComposition(); // at the same frame
  } catch (error) {
    $("props-note").textContent = error.message;
    $("props-note").className = "error";
  }
});

function listen() {
  const events = new EventSource(`/api/events?token=${encodeURIComponent(token)}`);
  events.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "hello") renderState(message.render);
    if (message.type === "render") renderState(message);
    if (message.type === "progress") {
      renderState({ state: "running", progress: message.progress, stage: message.stage, message: "" });
    }
    if ((message.type === "reload" || message.type === "hello") && message.version !== version && version !== -1) {
      config.version = message.version;
      loadComposition(); // a file changed: the same frame, props and loop range
    }
  };
}

// The median time from asking for a frame to its being drawn (for benchmarks and tests).
window.heliosPreviewTimings = () => timings.slice();

async function start() {
  config = await api("/api/state");
  slider.max = String(config.frames - 1);
  wanted = clamp(wanted);
  $("actual-size").checked = params.get("zoom") === "100";
  document.body.classList.toggle("transparent", Boolean(config.transparent));
  $("props").value = JSON.stringify(config.props, null, 2);
  $("props-note").textContent = config.schema ? "checked against the composition's schema" : "checked as JSON";
  loopText();
  loadComposition();
  saveAddress();
  listen();
}

start().catch((error) => say(`cannot start: ${error.message}`, true));
