// helios_render preview bridge. The preview's composition server puts it, then the runtime
// (js/runtime.js), at the top of every HTML page it serves. It lets the control page, on
// another origin, seek the composition with postMessage: no step needs CDP, so any browser
// shows the frame a render makes. `__HELIOS_PREVIEW__` is replaced with a JSON object:
// {control (the control page's origin), timeout (s), fpsNumerator, fpsDenominator}.
(() => {
  "use strict";
  const config = __HELIOS_PREVIEW__;
  // Only the composition's own frame, right under the control page, answers.
  if (window.parent === window || window.parent !== window.top) return;
  const control = window.parent;
  // Taken before the runtime replaces them with the virtual clock.
  const realSetTimeout = window.setTimeout.bind(window);
  const realClearTimeout = window.clearTimeout.bind(window);
  const realNow = performance.now.bind(performance);
  const REPLAY_REPORTS = 20;

  function post(message) {
    control.postMessage({ helios: "preview", ...message }, config.control);
  }
  const timeOf = (frame) => (frame * 1000 * config.fpsDenominator) / config.fpsNumerator;

  // ---- What went wrong, in the render's words ----------------------------------------------
  const KINDS = { img: "image", script: "script", link: "stylesheet", video: "media", audio: "media", source: "media", track: "text track" };
  window.addEventListener("error", (event) => {
    const target = event.target;
    if (target && target !== window && target.localName) {
      const url = target.currentSrc || target.src || target.href || "";
      const kind = KINDS[target.localName] || target.localName;
      post({ type: "problem", text: `the composition could not load the ${kind} ${url} (fix the path, or render anyway with --allow-missing-assets)` });
      return;
    }
    const error = event.error;
    const text = (error && error.stack) || event.message || String(error);
    post({ type: "problem", text: `the composition threw an uncaught error: ${text}` });
  }, true);
  window.addEventListener("unhandledrejection", (event) => {
    const reason = event.reason;
    post({ type: "problem", text: `the composition threw an uncaught error: ${(reason && reason.stack) || reason}` });
  });
  function describe(error) {
    if (error && error.name === "HeliosRuntimeError") return error.message;
    if (error && error.heliosTimeout) return error.message;
    return `the composition threw: ${(error && error.stack) || error}`;
  }

  // ---- Seeks, one at a time, as a render's worker makes them -------------------------------
  let position = null; // the last frame seeked; Infinity when unknown (a seek timed out)
  // Everything waits for the runtime, the script after this one. The parser may stop between
  // the two (the page's bytes arrive in pieces; the runtime alone is ~90 kB), and a task (a
  // timer, a message) may run in that gap: it must not find `window.__helios` missing.
  let queue = new Promise((resolve) => {
    const check = () => (window.__helios ? resolve() : realSetTimeout(check, 4));
    check();
  });

  function within(promise, frame) {
    let timer = null;
    const limit = new Promise((_, reject) => {
      timer = realSetTimeout(() => {
        const labels = window.__helios.pending();
        const waiting = labels.length ? `; still waiting for: ${labels.join(", ")}` : "";
        const error = new Error(`frame ${frame} was not ready within ${config.timeout} s${waiting} (raise --timeout, or resume every heliosRender.delay() handle)`);
        error.heliosTimeout = true;
        reject(error);
      }, config.timeout * 1000);
    });
    return Promise.race([promise, limit]).finally(() => realClearTimeout(timer));
  }
  async function seek(frame, paint) {
    try {
      // With paint, the runtime also waits until a moved <video> presented its new picture.
      await within(window.__helios.seek(frame, timeOf(frame), paint), frame);
    } catch (error) {
      position = Infinity; // the page is in an unknown state: the next show reloads it
      throw error;
    }
    position = frame;
  }

  // Frame `target` as `helios-render still --frame target` makes it: virtual time only runs
  // forward (an earlier frame needs the page loaded again: the control page does that); an
  // rAF page runs every frame before it without painting, as a chunk that starts late does;
  // frame target - 1 is drawn once before target, as in a whole render.
  async function show(target, id) {
    const started = realNow();
    if (position !== null && target < position) {
      post({ type: "reload", frame: target, id });
      return;
    }
    if (position !== target) {
      if (target > 0 && position !== target - 1) {
        if (window.__helios.info().rafPending) {
          const begin = position === null ? 0 : position + 1;
          const total = target - 1 - begin;
          const every = Math.max(1, Math.floor(total / REPLAY_REPORTS));
          for (let frame = begin; frame < target - 1; frame++) {
            await seek(frame, false);
            const done = frame - begin + 1;
            if (done % every === 0 || done === total) post({ type: "replaying", frame: target, done, total, id });
          }
        }
        await seek(target - 1, true);
      }
      await seek(target, true);
    }
    post({ type: "shown", frame: target, id, ms: realNow() - started });
  }

  window.addEventListener("message", (event) => {
    if (event.source !== control || event.origin !== config.control) return;
    const message = event.data;
    if (!message || message.helios !== "preview" || message.type !== "show") return;
    const frame = Number(message.frame);
    if (!Number.isInteger(frame) || frame < 0) return;
    queue = queue.then(() => show(frame, message.id)).catch((error) => {
      post({ type: "failed", frame, id: message.id, text: describe(error) });
    });
  });

  // Ready once the page has loaded (fonts, images, shadow roots, as for a render).
  realSetTimeout(() => {
    queue = queue.then(() => window.__helios.ready()).then(() => {
      post({ type: "ready", info: window.__helios.info() });
    }).catch((error) => post({ type: "failed", frame: null, text: describe(error) }));
  }, 0);
})();
