// helios_render virtual-time runtime. Injected with Page.addScriptToEvaluateOnNewDocument, so it
// runs in every frame of the page before any of the page's own scripts. `__HELIOS_CONFIG__` is
// replaced by the renderer with a JSON object: {fps, seed, props, epoch}.
(() => {
  "use strict";
  if (window.__helios) return;
  const config = __HELIOS_CONFIG__;

  const RealDate = Date;
  const state = { usedClock: false, usedRaf: false };
  let now = 0; // virtual milliseconds since the composition's frame 0
  let currentFrame = 0;
  const errors = [];

  function recordError(error) {
    if (config.ignorePageErrors) {
      console.error("helios: ignored an error of the composition:", error);
      return;
    }
    errors.push(error instanceof Error ? error : new Error(String(error)));
  }

  // ---- Date and performance.now -------------------------------------------------------------
  function HeliosDate(...args) {
    if (!new.target) return new RealDate(config.epoch + now).toString();
    if (args.length === 0) return Reflect.construct(RealDate, [config.epoch + now], new.target);
    return Reflect.construct(RealDate, args, new.target);
  }
  HeliosDate.prototype = RealDate.prototype;
  HeliosDate.now = () => config.epoch + now;
  HeliosDate.parse = RealDate.parse;
  HeliosDate.UTC = RealDate.UTC;
  Object.defineProperty(HeliosDate, "name", { value: "Date" });
  window.Date = HeliosDate;
  Object.defineProperty(performance, "now", { value: () => now, configurable: true });

  // ---- Math.random: seeded (mulberry32), the same sequence in every worker ------------------
  let seed = config.seed >>> 0;
  Math.random = () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  // ---- Timers: fired in order of due time (then creation) as the clock moves ---------------
  const timers = new Map();
  let timerSeq = 1;
  let order = 1;
  let nesting = 0;
  function addTimer(fn, delay, args, repeat) {
    let ms = Number(delay) || 0;
    if (!(ms > 0)) ms = 0;
    if (nesting >= 5) ms = Math.max(ms, 4); // HTML's clamp for deeply nested timers
    if (repeat) ms = Math.max(ms, 1);
    const callback = typeof fn === "function" ? fn : () => (0, eval)(String(fn));
    const id = timerSeq++;
    timers.set(id, { id, due: now + ms, order: order++, fn: callback, args, repeat: repeat ? ms : 0, nesting: nesting + 1 });
    state.usedClock = true;
    return id;
  }
  window.setTimeout = (fn, delay, ...args) => addTimer(fn, delay, args, false);
  window.setInterval = (fn, delay, ...args) => addTimer(fn, delay, args, true);
  window.clearTimeout = (id) => { timers.delete(id); };
  window.clearInterval = (id) => { timers.delete(id); };

  function nextTimer(limit) {
    let best = null;
    for (const timer of timers.values()) {
      if (timer.due > limit) continue;
      if (!best || timer.due < best.due || (timer.due === best.due && timer.order < best.order)) best = timer;
    }
    return best;
  }

  // A macrotask boundary: every microtask queued by a callback has run when this resolves.
  function flushMicrotasks() {
    return new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => { channel.port1.close(); resolve(); };
      channel.port2.postMessage(0);
    });
  }

  async function runTimersUntil(target) {
    for (;;) {
      const timer = nextTimer(target);
      if (!timer) break;
      now = Math.max(now, timer.due);
      if (timer.repeat) {
        timer.due += timer.repeat;
        timer.order = order++;
      } else {
        timers.delete(timer.id);
      }
      nesting = timer.nesting;
      try {
        timer.fn.apply(window, timer.args);
      } catch (error) {
        recordError(error);
      } finally {
        nesting = 0;
      }
      await flushMicrotasks();
      trackAnimations();
    }
    now = Math.max(now, target);
  }

  // ---- requestAnimationFrame: run once per rendered frame with the virtual timestamp --------
  let rafQueue = new Map();
  let rafSeq = 1;
  window.requestAnimationFrame = (callback) => {
    const id = rafSeq++;
    rafQueue.set(id, callback);
    state.usedRaf = true;
    return id;
  };
  window.cancelAnimationFrame = (id) => { rafQueue.delete(id); };
  async function runAnimationFrame(timestamp) {
    if (rafQueue.size === 0) return;
    const queue = rafQueue;
    rafQueue = new Map();
    for (const callback of queue.values()) {
      try {
        callback(timestamp);
      } catch (error) {
        recordError(error);
      }
    }
    await flushMicrotasks();
  }

  // ---- CSS animations, CSS transitions and Web Animations ---------------------------------
  // Animations are found through the timelines' animation lists (document.getAnimations() and
  // each known shadow root's getAnimations()), never by walking the DOM. An animation is given
  // the virtual time at which it was first seen as its start: the runtime looks right after
  // every callback it runs, so an animation started by a timer at t = 1.5 s starts at 1.5 s.
  // Chromium's document.getAnimations() leaves out shadow trees, so every shadow root the page
  // creates (open or closed) is remembered as it is attached, and asked too.
  const tracked = new Map(); // Animation -> virtual start time (ms)
  const shadowRoots = new Set();
  const realAttachShadow = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function attachShadow(...args) {
    const root = realAttachShadow.apply(this, args);
    shadowRoots.add(root);
    return root;
  };
  function findDeclarativeShadowRoots() {
    for (const element of document.querySelectorAll("*")) {
      if (element.shadowRoot) shadowRoots.add(element.shadowRoot);
    }
  }
  function trackList(list) {
    for (const animation of list) {
      if (tracked.has(animation)) continue;
      tracked.set(animation, now);
      try { animation.pause(); } catch (error) { /* an animation without a timeline */ }
    }
  }
  function trackAnimations() {
    try {
      trackList(document.getAnimations());
    } catch (error) {
      return;
    }
    for (const root of shadowRoots) {
      if (!root.host || !root.host.isConnected) continue;
      try { trackList(root.getAnimations()); } catch (error) { /* detached */ }
    }
  }
  // pause() first, then currentTime: a pause that is still pending (the animation had not
  // started yet when it was found) keeps the hold time we set when it completes.
  function seekAnimations(t) {
    for (const [animation, start] of tracked) {
      const target = animation.effect && animation.effect.target;
      if (target && !target.isConnected) {
        tracked.delete(animation);
        continue;
      }
      try {
        if (animation.playState !== "paused") animation.pause();
        animation.currentTime = (t - start) * animation.playbackRate;
      } catch (error) {
        tracked.delete(animation);
      }
    }
  }

  // ---- <video> and <audio> --------------------------------------------------------------------
  // A media element shows the time of the composition, offset by `data-helios-start` seconds.
  function seekMedia(t) {
    const waits = [];
    for (const media of document.querySelectorAll("video, audio")) {
      if (!media.paused) media.pause();
      const offset = Number(media.dataset.heliosStart || 0);
      let target = Math.max(0, t / 1000 - offset);
      if (Number.isFinite(media.duration) && media.duration > 0) {
        target = media.loop ? target % media.duration : Math.min(target, media.duration);
      }
      if (Math.abs(media.currentTime - target) > 1e-6 || media.readyState < 2) {
        waits.push(new Promise((resolve) => {
          const done = () => {
            media.removeEventListener("seeked", done);
            media.removeEventListener("error", done);
            media.removeEventListener("loadeddata", check);
            resolve();
          };
          const check = () => { if (!media.seeking && media.readyState >= 2) done(); };
          media.addEventListener("seeked", done);
          media.addEventListener("error", done);
          media.addEventListener("loadeddata", check);
          if (media.readyState >= 1) media.currentTime = target;
          else media.addEventListener("loadedmetadata", () => { media.currentTime = target; }, { once: true });
          if (media.readyState >= 2 && !media.seeking) done();
        }));
      }
    }
    return waits;
  }

  // ---- Readiness: fonts, images, the page's own delay handles ---------------------------------
  const delays = new Map();
  let delaySeq = 1;
  let delayWaiters = [];
  function settleDelays() {
    if (delays.size > 0) return;
    const waiters = delayWaiters;
    delayWaiters = [];
    for (const resolve of waiters) resolve();
  }
  function waitDelays() {
    if (delays.size === 0) return Promise.resolve();
    return new Promise((resolve) => delayWaiters.push(resolve));
  }
  function imagesReady() {
    const waits = [];
    for (const image of document.images) {
      if (!image.complete) {
        waits.push(new Promise((resolve) => {
          image.addEventListener("load", resolve, { once: true });
          image.addEventListener("error", resolve, { once: true });
        }));
      } else if (image.naturalWidth > 0 && image.decode) {
        const source = image.currentSrc;
        waits.push(image.decode().then(() => decodedImages.set(image, source), () => undefined));
      }
    }
    return waits;
  }

  function sameOriginChildren() {
    const children = [];
    for (let i = 0; i < window.frames.length; i++) {
      try {
        const child = window.frames[i];
        if (child.__helios) children.push(child.__helios);
      } catch (error) { /* cross-origin: not ours to drive */ }
    }
    return children;
  }

  function describeError(error) {
    return (error && error.stack) || String(error);
  }

  // ---- seek: a synchronous fast path when nothing can be pending ----------------------------
  // When no timer is due, no media, hook, child frame, delay handle, font or undecoded image
  // can make the frame wait, a seek does all its work synchronously and returns the frame
  // number instead of a promise, so Runtime.evaluate answers without a promise round trip.
  // Microtasks queued by rAF callbacks still run before the capture (at the end of the
  // evaluation's task); an animation they start is found at the next seek, at its start time.
  const realNow = Performance.prototype.now.bind(performance); // for the renderer's profile only
  let profile = null; // [workMs, settleMs, ...] per seek, while the renderer profiles
  const mediaElements = [document.getElementsByTagName("video"), document.getElementsByTagName("audio")];
  const decodedImages = new WeakMap(); // <img> -> the currentSrc it was decoded with
  function canSeekSynchronously(t) {
    if (nextTimer(t) || delays.size > 0) return false;
    if (mediaElements[0].length > 0 || mediaElements[1].length > 0) return false;
    const helios = window.helios;
    if (helios && typeof helios.seek === "function") return false;
    if (window.frames.length > 0) return false;
    if (document.fonts && document.fonts.status !== "loaded") return false;
    for (const image of document.images) {
      if (!image.complete || (image.naturalWidth > 0 && decodedImages.get(image) !== image.currentSrc)) return false;
    }
    return true;
  }

  function seek(frame, t) {
    const started = profile ? realNow() : 0;
    currentFrame = frame;
    errors.length = 0;
    if (t < now) throw new Error(`helios: cannot seek back in time (from ${now} ms to ${t} ms)`);
    trackAnimations();
    if (!canSeekSynchronously(t)) return seekAsync(frame, t, started);
    now = t;
    if (rafQueue.size > 0) {
      const queue = rafQueue;
      rafQueue = new Map();
      for (const callback of queue.values()) {
        try {
          callback(t);
        } catch (error) {
          recordError(error);
        }
      }
    }
    trackAnimations();
    seekAnimations(t);
    if (profile) profile.push(realNow() - started, 0);
    if (errors.length > 0) throw errors[0];
    return frame;
  }

  async function seekAsync(frame, t, started) {
    await runTimersUntil(t);
    now = t;
    await runAnimationFrame(t);
    trackAnimations();
    seekAnimations(t);
    const waits = seekMedia(t);
    const helios = window.helios;
    if (helios && typeof helios.seek === "function") {
      await helios.seek(frame);
      if (typeof helios.waitUntilStable === "function") await helios.waitUntilStable();
    }
    for (const child of sameOriginChildren()) waits.push(child.seek(frame, t));
    waits.push(...imagesReady());
    if (document.fonts) waits.push(document.fonts.ready);
    waits.push(waitDelays());
    const settling = profile ? realNow() : 0;
    await Promise.all(waits);
    if (profile) profile.push(settling - started, realNow() - settling);
    if (errors.length > 0) throw errors[0];
    return frame;
  }

  async function ready() {
    if (document.readyState !== "complete") {
      await new Promise((resolve) => window.addEventListener("load", resolve, { once: true }));
    }
    if (document.fonts) await document.fonts.ready;
    await Promise.all(imagesReady());
    findDeclarativeShadowRoots();
    trackAnimations();
    const children = sameOriginChildren();
    await Promise.all(children.map((child) => child.ready()));
    return true;
  }

  function pending() {
    const labels = [...delays.values()];
    for (const image of document.images) if (!image.complete) labels.push(`image ${image.currentSrc || image.src}`);
    for (const media of document.querySelectorAll("video, audio")) {
      if (media.seeking || media.readyState < 2) labels.push(`media ${media.currentSrc || media.src}`);
    }
    if (document.fonts && document.fonts.status !== "loaded") labels.push("fonts");
    for (const child of sameOriginChildren()) labels.push(...child.pending());
    return labels;
  }

  // ---- The page-facing API -------------------------------------------------------------------
  const api = Object.freeze({
    /** Hold capture of the current frame until `resume(handle)` is called. */
    delay(label) {
      const handle = delaySeq++;
      delays.set(handle, String(label === undefined ? `delay #${handle}` : label));
      return handle;
    },
    /** Release a handle returned by `delay`. Unknown handles are ignored. */
    resume(handle) {
      delays.delete(handle);
      settleDelays();
    },
    get frame() { return currentFrame; },
    get time() { return now / 1000; },
    fps: config.fps,
    props: config.props,
  });
  Object.defineProperty(window, "heliosRender", { value: api, configurable: false });
  window.__HELIOS_PROPS__ = config.props;

  Object.defineProperty(window, "__helios", {
    value: Object.freeze({
      seek,
      ready,
      pending,
      describeError,
      info: () => ({ usedClock: state.usedClock, usedRaf: state.usedRaf, rafPending: rafQueue.size, now }),
      /** The seek profile so far ([workMs, settleMs] per seek; null when off); `on` restarts it. */
      profile: (on) => { const out = profile; profile = on ? [] : null; return out; },
    }),
    configurable: false,
  });
})();
