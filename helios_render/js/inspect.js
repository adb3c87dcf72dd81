// helios_render inspection hooks (helios-render inspect, render --preflight). Injected before the
// virtual-time runtime, only into a page that is being inspected, never into a render: it
// notes every call that may make frames differ between runs or machines, with the script
// position of the caller, and reads the page's props schema, media and fonts on request.
// Nothing here changes what a call does.
(() => {
  "use strict";
  if (window.__heliosInspect) return;
  const setTimeoutReal = window.setTimeout.bind(window); // the runtime makes setTimeout virtual
  const LIMIT = 20; // notes kept per kind
  const notes = new Map(); // kind -> Map(where -> {kind, message, where})
  const OWN = /__helios|inspect\.js/;

  // The first stack frame that is the page's own script: "url:line:column".
  function caller() {
    const stack = String(new Error().stack || "").split("\n").slice(1);
    for (const line of stack) {
      const match = /((?:https?|file|blob):\/\/?[^\s()]+?:\d+:\d+)\)?\s*$/.exec(line);
      if (match && !OWN.test(line)) return match[1];
    }
    return null;
  }
  function note(kind, message, where) {
    let seen = notes.get(kind);
    if (!seen) notes.set(kind, (seen = new Map()));
    const at = where === undefined ? caller() || "(inline or unknown script)" : where;
    if (seen.has(at) || seen.size >= LIMIT) return;
    seen.set(at, { kind, message, where: at });
  }
  function wrapMethod(owner, name, kind, message) {
    if (!owner) return;
    const original = owner[name];
    if (typeof original !== "function") return;
    const wrapped = function (...args) {
      note(kind, message);
      return Reflect.apply(original, this, args);
    };
    Object.defineProperty(wrapped, "name", { value: name });
    try { owner[name] = wrapped; } catch (error) { /* read-only */ }
  }
  function wrapConstructor(name, kind, message, when) {
    const Original = window[name];
    if (typeof Original !== "function") return;
    const Wrapped = function (...args) {
      if (!when || when(args)) note(kind, message);
      return new.target ? Reflect.construct(Original, args, new.target) : Reflect.apply(Original, this, args);
    };
    Wrapped.prototype = Original.prototype;
    for (const key of Object.getOwnPropertyNames(Original)) {
      if (!(key in Wrapped)) try { Wrapped[key] = Original[key]; } catch (error) { /* skip */ }
    }
    Object.defineProperty(Wrapped, "name", { value: name });
    window[name] = Wrapped;
  }

  // ---- What may differ between runs or machines ---------------------------------------------
  const RANDOM = "crypto random values differ on every run (Math.random is seeded; crypto is not)";
  wrapMethod(window.crypto, "getRandomValues", "random-values", RANDOM);
  wrapMethod(window.crypto, "randomUUID", "random-values", RANDOM);
  const AUDIO = "Web Audio is not heard in the output (only <audio> and <video> are mixed)";
  for (const name of ["AudioContext", "webkitAudioContext", "OfflineAudioContext"]) wrapConstructor(name, "web-audio", AUDIO);
  const WORKER = "a Worker's timers and clock run in real time, not in the virtual time of the frames";
  for (const name of ["Worker", "SharedWorker"]) wrapConstructor(name, "worker", WORKER);
  const ZONE = "output that depends on the time zone or locale (pinned: UTC and en-US unless --timezone/--locale)";
  for (const name of ["toString", "toDateString", "toTimeString", "toLocaleString", "toLocaleDateString",
                      "toLocaleTimeString", "getTimezoneOffset", "getHours", "getMinutes", "getDate", "getDay",
                      "getMonth", "getFullYear"]) {
    wrapMethod(Date.prototype, name, "timezone-locale", ZONE);
  }
  wrapMethod(Number.prototype, "toLocaleString", "timezone-locale", ZONE);
  wrapMethod(String.prototype, "localeCompare", "timezone-locale", ZONE);
  for (const name of ["DateTimeFormat", "NumberFormat", "RelativeTimeFormat", "ListFormat", "PluralRules", "Collator"]) {
    const Original = Intl[name];
    if (typeof Original !== "function") continue;
    const Wrapped = function (...args) {
      if (args[0] === undefined) note("timezone-locale", ZONE);
      return new.target ? Reflect.construct(Original, args, new.target) : Reflect.apply(Original, this, args);
    };
    Wrapped.prototype = Original.prototype;
    Wrapped.supportedLocalesOf = Original.supportedLocalesOf;
    Intl[name] = Wrapped;
  }
  const READBACK = "a canvas read back (its pixels can differ between GPUs, drivers and fonts)";
  if (window.CanvasRenderingContext2D) wrapMethod(CanvasRenderingContext2D.prototype, "getImageData", "canvas-readback", READBACK);
  if (window.HTMLCanvasElement) {
    wrapMethod(HTMLCanvasElement.prototype, "toDataURL", "canvas-readback", READBACK);
    wrapMethod(HTMLCanvasElement.prototype, "toBlob", "canvas-readback", READBACK);
  }
  for (const name of ["WebGLRenderingContext", "WebGL2RenderingContext"]) {
    if (window[name]) wrapMethod(window[name].prototype, "readPixels", "canvas-readback", READBACK);
  }
  const FOCUS = "document.hasFocus() depends on the browser window, not on the composition";
  wrapMethod(Document.prototype, "hasFocus", "has-focus", FOCUS);

  function crossOriginFrames() {
    for (const frame of document.querySelectorAll("iframe, frame")) {
      let reachable = false;
      try { reachable = Boolean(frame.contentWindow && frame.contentWindow.document); } catch (error) { reachable = false; }
      if (reachable) continue;
      const where = `<${frame.localName}${frame.id ? `#${frame.id}` : ""}> ${frame.getAttribute("src") || (frame.hasAttribute("srcdoc") ? "srcdoc (sandboxed)" : "")}`.trim();
      note("cross-origin-iframe", "a cross-origin frame runs on the real clock: the runtime cannot reach it to seek it", where);
    }
  }

  // ---- Reports -------------------------------------------------------------------------------
  function describe(element) {
    let text = element.localName;
    if (element.id) text += `#${element.id}`;
    else if (element.classList && element.classList.length) text += `.${element.classList[0]}`;
    return `<${text}>`;
  }
  function propsSchema() {
    const script = document.getElementById("helios-props-schema");
    if (!script) return { schema: null, error: null };
    try {
      return { schema: JSON.parse(script.textContent || ""), error: null };
    } catch (error) {
      return { schema: null, error: String(error && error.message || error) };
    }
  }
  async function media() {
    const elements = [...document.querySelectorAll("video, audio")];
    const waits = elements.map((element) => new Promise((resolve) => {
      if (element.readyState >= 1 || element.error) { resolve(); return; }
      element.addEventListener("loadedmetadata", resolve, { once: true });
      element.addEventListener("error", resolve, { once: true });
      setTimeoutReal(resolve, 3000);
    }));
    await Promise.all(waits);
    return elements.map((element) => ({
      element: describe(element),
      src: element.currentSrc || element.src || (element.querySelector("source") || {}).src || "",
      duration: Number.isFinite(element.duration) ? element.duration : null,
      decodes: !element.error && element.readyState >= 1 && (element.localName !== "video" || element.videoWidth > 0),
      error: element.error ? element.error.message || `media error ${element.error.code}` : null,
    }));
  }
  // Mark one element per distinct font-family list that draws text, so that the renderer can
  // ask CSS.getPlatformFontsForNode which face drew it.
  function fontProbes() {
    const families = new Map();
    const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.nodeValue || !node.nodeValue.trim()) continue;
      const element = node.parentElement;
      if (!element || ["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "TITLE"].includes(element.tagName)) continue;
      const family = getComputedStyle(element).fontFamily;
      if (families.has(family) || families.size >= 50) continue;
      families.set(family, element);
    }
    // Text whose page sets no font-family gets the browser's default (the serif generic).
    const probe = document.createElement("span");
    probe.style.fontFamily = "initial";
    (document.body || document.documentElement).appendChild(probe);
    const initial = getComputedStyle(probe).fontFamily;
    probe.remove();
    const faces = [...document.fonts].filter((face) => face.status === "loaded").map((face) => face.family.replace(/^["']|["']$/g, ""));
    const probes = [];
    let index = 0;
    for (const [family, element] of families) {
      element.setAttribute("data-helios-font-probe", String(index));
      probes.push({ index, family: family === initial ? "serif" : family, where: describe(element), webFonts: faces });
      index++;
    }
    return probes;
  }
  Object.defineProperty(window, "__heliosInspect", {
    value: Object.freeze({
      async report() {
        crossOriginFrames();
        const out = [];
        for (const seen of notes.values()) out.push(...seen.values());
        return { warnings: out, props: propsSchema(), media: await media(), fonts: fontProbes() };
      },
    }),
    configurable: false,
  });
})();
