// helios_render virtual-time runtime. Injected with Page.addScriptToEvaluateOnNewDocument, so it
// runs in every frame of the page before any of the page's own scripts. `__HELIOS_CONFIG__` is
// replaced by the renderer with a JSON object: {fps, seed, props, epoch}.
(() => {
  "use strict";
  if (window.__helios) return;
  const config = __HELIOS_CONFIG__;

  const RealDate = Date;
  const RealMessageChannel = window.MessageChannel;
  const realSetTimeout = window.setTimeout.bind(window);
  const realNow = performance.now.bind(performance);
  const realFetch = window.fetch.bind(window);
  const state = { usedClock: false, usedRaf: false };
  let now = 0; // virtual milliseconds since the composition's frame 0
  let currentFrame = 0;
  const errors = [];

  // An error of the runtime's own making (a broken video, a seek back in time): the renderer
  // reports its message alone, without the runtime's stack.
  class HeliosRuntimeError extends Error {}
  Object.defineProperty(HeliosRuntimeError.prototype, "name", { value: "HeliosRuntimeError" });
  // A file the composition uses cannot be played or decoded: the renderer's AssetError.
  class HeliosAssetError extends HeliosRuntimeError {}
  Object.defineProperty(HeliosAssetError.prototype, "name", { value: "HeliosAssetError" });

  // A URL short enough for a message (the renderer shortens URLs the same way).
  function shortUrl(url) {
    url = String(url || "");
    if (url.startsWith("data:")) {
      if (url.length <= 64) return url;
      return `${url.slice(0, Math.min(48, url.indexOf(",") < 0 ? 48 : url.indexOf(",")))},... (${url.length} characters)`;
    }
    if (url.length <= 120) return url;
    return `${url.slice(0, 77)}...${url.slice(-40)}`;
  }
  function describeElement(element) {
    let text = element.tagName.toLowerCase();
    if (element.id) text += `#${element.id}`;
    return `<${text}>`;
  }

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
  // ---- The clock's origin: performance.now() and rAF timestamps never read 0 ----------------
  // In a browser they count from navigation start, so the first frame after load reads some
  // hundred milliseconds, never 0 (code that takes 0 for "not started yet" relies on it).
  // They read `config.clockOrigin` plus the virtual time: the same in every worker and run,
  // so what is exact is the time between frames and the time since frame 0.
  // document.timeline (and Helios core, which binds to it) and __HELIOS_VIRTUAL_TIME__ keep
  // counting from frame 0.
  const clockOrigin = Number(config.clockOrigin) || 0;
  function clockReading(t) { return clockOrigin + t; }
  Object.defineProperty(performance, "now", { value: () => clockReading(now), configurable: true });

  // ---- document.timeline: the document's animation clock is the virtual clock ---------------
  // Libraries (Helios core's bindToDocumentTimeline, some tweening engines) read
  // `document.timeline.currentTime`. Every DocumentTimeline reads `now`, less its origin time.
  const timelineOrigins = new WeakMap();
  const RealDocumentTimeline = window.DocumentTimeline;
  const timelineTime = window.AnimationTimeline
    && Object.getOwnPropertyDescriptor(AnimationTimeline.prototype, "currentTime");
  if (RealDocumentTimeline && timelineTime && timelineTime.get) {
    Object.defineProperty(AnimationTimeline.prototype, "currentTime", {
      configurable: true,
      enumerable: timelineTime.enumerable,
      get() {
        if (this instanceof RealDocumentTimeline) return now - (timelineOrigins.get(this) || 0);
        return timelineTime.get.call(this);
      },
    });
    const HeliosDocumentTimeline = function DocumentTimeline(options) {
      if (!new.target) throw new TypeError("Failed to construct 'DocumentTimeline': Please use the 'new' operator");
      const timeline = Reflect.construct(RealDocumentTimeline, [options], new.target);
      timelineOrigins.set(timeline, Number(options && options.originTime) || 0);
      return timeline;
    };
    HeliosDocumentTimeline.prototype = RealDocumentTimeline.prototype;
    window.DocumentTimeline = HeliosDocumentTimeline;
  }
  // The Helios renderer's virtual-time contract: Helios core prefers this global, in ms, to
  // document.timeline when it exists (and may hook it with a setter to react at once).
  window.__HELIOS_VIRTUAL_TIME__ = 0;

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
      const channel = new RealMessageChannel();
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
  const realRequestAnimationFrame = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) => {
    const id = rafSeq++;
    rafQueue.set(id, callback);
    state.usedRaf = true;
    return id;
  };
  window.cancelAnimationFrame = (id) => { rafQueue.delete(id); };
  // The callbacks waiting, once each; whether there were any.
  function runAnimationCallbacks(timestamp) {
    if (rafQueue.size === 0) return false;
    const queue = rafQueue;
    rafQueue = new Map();
    for (const callback of queue.values()) {
      try {
        callback(timestamp);
      } catch (error) {
        recordError(error);
      }
    }
    return true;
  }
  async function runAnimationFrame(timestamp) {
    if (runAnimationCallbacks(timestamp)) await flushMicrotasks();
  }

  // ---- CSS animations, CSS transitions and Web Animations ---------------------------------
  // Animations are found through the timelines' animation lists (document.getAnimations() and
  // each known shadow root's getAnimations()), never by walking the DOM. An animation is given
  // the virtual time at which it was first seen as its start: the runtime looks right after
  // every callback it runs, so an animation started by a timer at t = 1.5 s starts at 1.5 s.
  // Chromium's document.getAnimations() leaves out shadow trees, so every shadow root the page
  // creates (open or closed) is remembered as it is attached, and asked too.
  const tracked = new Map(); // Animation -> its model (see "Web Animations under the page's control")
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
      if (!tracked.has(animation)) adoptAnimation(animation);
    }
  }
  function trackAnimations() {
    try {
      trackList(document.getAnimations());
      trackSvgTimelines(document);
      trackAnimatedImages();
    } catch (error) {
      return;
    }
    for (const root of shadowRoots) {
      if (!root.host || !root.host.isConnected) continue;
      try {
        trackList(root.getAnimations());
        trackSvgTimelines(root);
      } catch (error) { /* detached */ }
    }
  }

  // ---- SVG SMIL: every outermost <svg> owns a timeline (<animate>, <set>, ...) ---------------
  // Found where animations are found (document and known shadow roots, after every callback),
  // paused at once, and set to the virtual time since it was first seen at every frame.
  const svgTimelines = new Map(); // outermost <svg> -> virtual start time (ms)
  function trackSvgTimelines(root) {
    for (const svg of root.querySelectorAll("svg")) {
      if (svg.ownerSVGElement || svgTimelines.has(svg)) continue;
      svgTimelines.set(svg, now);
      try { svg.pauseAnimations(); } catch (error) { /* not an SVGSVGElement */ }
    }
  }
  function seekSvgTimelines(t) {
    for (const [svg, start] of svgTimelines) {
      if (!svg.isConnected) {
        svgTimelines.delete(svg);
        continue;
      }
      try {
        if (!svg.animationsPaused()) svg.pauseAnimations();
        svg.setCurrentTime(Math.max(0, t - start) / 1000);
      } catch (error) {
        svgTimelines.delete(svg);
      }
    }
  }
  // Every animation shows its model's current time at `t` (the clock is at `t`): pause()
  // first, then currentTime, so that a pause that is still pending (the animation had not
  // started yet when it was found) keeps the hold time we set when it completes.
  function seekAnimations(t) {
    for (const [animation, model] of tracked) {
      const target = animation.effect && animation.effect.target;
      if (target && !target.isConnected) {
        tracked.delete(animation);
        continue;
      }
      try {
        updateFinished(animation, model, false);
        showAnimation(animation, model);
      } catch (error) {
        tracked.delete(animation);
      }
    }
  }

  // ---- Web Animations under the page's control ----------------------------------------------
  // Every animation on a document timeline (CSS animations and transitions included) has a
  // model of its timing on the virtual clock: start time, hold time and playback rate, as in
  // Web Animations 1 ("Animations": current time, play, pause, finish, reverse, the finished
  // state). The real animation is kept paused and shows the model's current time (see
  // showAnimation). What the page does to an animation (play, pause, reverse, finish, cancel,
  // updatePlaybackRate, and setting currentTime, startTime or playbackRate) changes the model
  // by the spec's procedures at the virtual moment it is done, and what it reads
  // (currentTime, startTime, playbackRate, playState, pending, ready, finished) comes from the
  // model. One difference, for exactness: a pending play or pause completes at once, at the
  // virtual time of the call (a browser completes it at its next frame).
  const AnimationProto = window.Animation && Animation.prototype;
  const realAnimation = {}; // the real methods and accessors, by name
  function timelineOrigin(animation) {
    const timeline = animation.timeline;
    if (!timeline || !RealDocumentTimeline || !(timeline instanceof RealDocumentTimeline)) return null;
    return timelineOrigins.get(timeline) || 0;
  }
  function adoptAnimation(animation) {
    let model = tracked.get(animation);
    if (model) return model;
    const origin = timelineOrigin(animation);
    if (origin === null) return null; // a scroll or view timeline: not the clock's business
    // A new animation (or one the runtime sees for the first time) starts now; one that has
    // not been played yet (new Animation()) is idle.
    const idle = realAnimation.playState.get.call(animation) === "idle";
    model = {
      origin,
      start: idle ? null : now - origin,
      hold: null,
      rate: realAnimation.playbackRate.get.call(animation),
      previous: null,
      finished: null, // { promise, resolve, reject, done }, made when the page asks
      notified: false,
      ready: null,
    };
    tracked.set(animation, model);
    try { realAnimation.pause.call(animation); } catch (error) { /* no timeline */ }
    return model;
  }
  function timelineNow(model) { return now - model.origin; }
  /** The real animation's play state ("paused" while the runtime holds it), not the model's. */
  function realPlayState(animation) {
    return realAnimation.playState ? realAnimation.playState.get.call(animation) : animation.playState;
  }
  function effectEnd(animation) {
    const effect = animation.effect;
    if (!effect) return 0;
    try {
      const end = effect.getComputedTiming().endTime;
      return typeof end === "number" ? end : Number(end) || 0;
    } catch (error) {
      return 0;
    }
  }
  function modelTime(model) {
    if (model.hold !== null) return model.hold;
    if (model.start === null) return null;
    return (timelineNow(model) - model.start) * model.rate;
  }
  function modelState(animation, model) {
    if (model.start === null && model.hold === null) return "idle";
    if (model.start === null) return "paused";
    const time = modelTime(model);
    const end = effectEnd(animation);
    if ((model.rate > 0 && time >= end) || (model.rate < 0 && time <= 0)) return "finished";
    return "running";
  }
  function invalidState(message) {
    return new DOMException(`Failed to execute on 'Animation': ${message}`, "InvalidStateError");
  }
  function finishedPromise(model) {
    if (!model.finished) {
      const slot = { done: false };
      slot.promise = new Promise((resolve, reject) => { slot.resolve = resolve; slot.reject = reject; });
      slot.promise.catch(() => undefined); // a cancel rejects it; that is not the page's error
      model.finished = slot;
    }
    return model.finished.promise;
  }
  // "Update an animation's finished state", then the finish notification (the finished
  // promise resolves and a `finish` event is dispatched, in a microtask).
  function updateFinished(animation, model, didSeek) {
    const end = effectEnd(animation);
    let unconstrained = null;
    if (didSeek) unconstrained = modelTime(model);
    else if (model.start !== null) unconstrained = (timelineNow(model) - model.start) * model.rate;
    if (unconstrained !== null && model.start !== null) {
      if (model.rate > 0 && unconstrained >= end) {
        model.hold = didSeek ? unconstrained : model.previous === null ? end : Math.max(model.previous, end);
      } else if (model.rate < 0 && unconstrained <= 0) {
        model.hold = didSeek ? unconstrained : model.previous === null ? 0 : Math.min(model.previous, 0);
      } else if (model.rate !== 0) {
        if (didSeek && model.hold !== null) model.start = timelineNow(model) - model.hold / model.rate;
        model.hold = null;
      }
    }
    model.previous = modelTime(model);
    const finished = modelState(animation, model) === "finished";
    if (finished && !model.notified) {
      model.notified = true;
      const slot = model.finished;
      if (slot && !slot.done) { slot.done = true; slot.resolve(animation); }
      const currentTime = model.previous;
      const timelineTime = timelineNow(model);
      queueMicrotask(() => {
        try {
          animation.dispatchEvent(new AnimationPlaybackEvent("finish", { currentTime, timelineTime }));
        } catch (error) {
          recordError(error);
        }
      });
    } else if (!finished) {
      model.notified = false;
      if (model.finished && model.finished.done) model.finished = null; // a new promise
    }
  }
  // "Silently set the current time".
  function setModelTime(model, time) {
    if (model.hold !== null || model.start === null || model.rate === 0) model.hold = time;
    else model.start = timelineNow(model) - time / model.rate;
    model.previous = null;
  }
  // "Play an animation", its pending task run at once; `rate` is a pending playback rate.
  function playModel(animation, model, autoRewind, rate = null) {
    const end = effectEnd(animation);
    const effective = rate === null ? model.rate : rate;
    const time = modelTime(model);
    let seek = null;
    if (effective > 0 && autoRewind && (time === null || time < 0 || time >= end)) {
      seek = 0;
    } else if (effective < 0 && autoRewind && (time === null || time <= 0 || time > end)) {
      if (end === Infinity) throw invalidState("Cannot play reversed Animation with infinite target effect end.");
      seek = end;
    } else if (effective === 0 && time === null) {
      seek = 0;
    }
    if (seek !== null) {
      model.start = null;
      model.hold = seek;
    } else if (model.hold === null && rate === null) {
      return; // running already
    }
    const ready = timelineNow(model);
    if (model.hold !== null) {
      model.rate = effective;
      model.start = effective === 0 ? ready : ready - model.hold / effective;
      if (effective !== 0) model.hold = null;
    } else if (model.start !== null) {
      const match = (ready - model.start) * model.rate;
      model.rate = effective;
      if (effective === 0) { model.hold = match; model.start = ready; } else model.start = ready - match / effective;
    }
    updateFinished(animation, model, false);
  }
  // The real animation shows the model: paused at the model's current time, or cancelled.
  function showAnimation(animation, model) {
    if (model.start === null && model.hold === null) {
      if (realAnimation.playState.get.call(animation) !== "idle") realAnimation.cancel.call(animation);
      return;
    }
    if (realAnimation.playState.get.call(animation) !== "paused") realAnimation.pause.call(animation);
    if (realAnimation.playbackRate.get.call(animation) !== model.rate) realAnimation.playbackRate.set.call(animation, model.rate);
    realAnimation.currentTime.set.call(animation, modelTime(model));
  }
  // Runs `change(model)` for the page's call on `animation` (or the browser's own behaviour
  // for an animation that is not on a document timeline).
  function pageControl(animation, real, args, change) {
    const model = adoptAnimation(animation);
    if (!model) return real.apply(animation, args);
    updateFinished(animation, model, false);
    const result = change(model);
    showAnimation(animation, model);
    return result;
  }
  function controlAnimations() {
    if (!AnimationProto) return;
    for (const name of ["play", "pause", "reverse", "finish", "cancel", "updatePlaybackRate"]) {
      realAnimation[name] = AnimationProto[name];
    }
    for (const name of ["currentTime", "startTime", "playbackRate", "playState", "pending", "ready", "finished"]) {
      realAnimation[name] = Object.getOwnPropertyDescriptor(AnimationProto, name);
    }
    const method = (name, change) => {
      const real = realAnimation[name];
      Object.defineProperty(AnimationProto, name, {
        configurable: true, writable: true, enumerable: true,
        value: { [name](...args) { return pageControl(this, real, args, (model) => change(this, model, ...args)); } }[name],
      });
    };
    method("play", (animation, model) => { playModel(animation, model, true); });
    method("pause", (animation, model) => {
      if (model.start === null && model.hold !== null) return; // paused already
      if (modelTime(model) === null) {
        const end = effectEnd(animation);
        if (model.rate < 0 && end === Infinity) throw invalidState("Cannot pause, Animation has infinite target effect end.");
        model.hold = model.rate >= 0 ? 0 : end;
      }
      if (model.start !== null && model.hold === null) model.hold = (timelineNow(model) - model.start) * model.rate;
      model.start = null;
      updateFinished(animation, model, false);
    });
    method("reverse", (animation, model) => { playModel(animation, model, true, -model.rate); });
    method("finish", (animation, model) => {
      const end = effectEnd(animation);
      if (model.rate === 0) throw invalidState("Cannot finish Animation with a playbackRate of 0.");
      if (model.rate > 0 && end === Infinity) throw invalidState("Cannot finish Animation with an infinite target effect end.");
      const limit = model.rate > 0 ? end : 0;
      setModelTime(model, limit);
      if (model.start === null) model.start = timelineNow(model) - limit / model.rate;
      updateFinished(animation, model, true);
    });
    method("cancel", (animation, model) => {
      if (modelState(animation, model) === "idle") return;
      const slot = model.finished;
      if (slot && !slot.done) slot.reject(new DOMException("The user aborted a request.", "AbortError"));
      model.finished = null;
      model.notified = false;
      model.start = model.hold = model.previous = null;
    });
    method("updatePlaybackRate", (animation, model, value) => {
      const rate = Number(value);
      const state = modelState(animation, model);
      if (state === "idle" || state === "paused" || modelTime(model) === null) {
        model.rate = rate;
      } else if (state === "finished") {
        const unconstrained = (timelineNow(model) - model.start) * model.rate;
        model.start = rate === 0 ? timelineNow(model) : timelineNow(model) - unconstrained / rate;
        model.rate = rate;
        updateFinished(animation, model, false);
      } else {
        playModel(animation, model, false, rate);
      }
    });
    const accessor = (name, get, set) => {
      const real = realAnimation[name];
      if (!real) return;
      Object.defineProperty(AnimationProto, name, {
        configurable: true,
        enumerable: real.enumerable,
        get() {
          const model = adoptAnimation(this);
          if (!model) return real.get.call(this);
          updateFinished(this, model, false);
          return get(this, model);
        },
        set: real.set && set ? function (value) {
          pageControl(this, real.set, [value], (model) => set(this, model, value));
        } : real.set,
      });
    };
    accessor("currentTime", (animation, model) => modelTime(model), (animation, model, value) => {
      if (value === null || value === undefined) {
        if (modelTime(model) !== null) throw new TypeError("Failed to set the 'currentTime' property on 'Animation': currentTime may not be changed from resolved to unresolved");
        return;
      }
      setModelTime(model, Number(value));
      updateFinished(animation, model, true);
    });
    accessor("startTime", (animation, model) => model.start, (animation, model, value) => {
      const previous = modelTime(model);
      model.start = value === null || value === undefined ? null : Number(value);
      if (model.start !== null) { if (model.rate !== 0) model.hold = null; } else model.hold = previous;
      updateFinished(animation, model, true);
    });
    accessor("playbackRate", (animation, model) => model.rate, (animation, model, value) => {
      const previous = modelTime(model);
      model.rate = Number(value);
      if (previous !== null) {
        setModelTime(model, previous);
        updateFinished(animation, model, true);
      }
    });
    accessor("playState", (animation, model) => modelState(animation, model));
    accessor("pending", () => false);
    accessor("ready", (animation, model) => {
      if (!model.ready) model.ready = Promise.resolve(animation);
      return model.ready;
    });
    accessor("finished", (animation, model) => {
      const promise = finishedPromise(model);
      if (modelState(animation, model) === "finished" && !model.finished.done) {
        model.finished.done = true;
        model.finished.resolve(animation);
      }
      return promise;
    });
  }
  controlAnimations();

  // ---- Animated images: GIF, APNG, animated WebP/AVIF in <img> and CSS backgrounds ---------
  // The browser plays them on its own clock. Instead, each image is decoded once with
  // ImageDecoder into one still PNG per image frame (held as data: URLs, kept decoded), and at
  // every frame the <img> (or the element's background-image) is pointed at the still of the
  // image frame on screen at the virtual time since the image was first seen.
  const animatedSources = new Map(); // absolute URL -> Promise<decoded animation | null>
  const ownFrameUrls = new Set(); // our stills' data: URLs, never taken for a page's image
  const animatedImgs = new Map(); // <img> -> { url, start, shown }
  const animatedBackgrounds = new Map(); // element -> { value, urls, start, shown }
  const IMAGE_TYPES = { gif: "image/gif", png: "image/png", apng: "image/apng", webp: "image/webp", avif: "image/avif" };
  function imageType(response, url) {
    const header = (response.headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
    if (header.startsWith("image/")) return header;
    const match = /\.([a-z0-9]+)(?:[?#]|$)/i.exec(url);
    return match ? IMAGE_TYPES[match[1].toLowerCase()] || "" : "";
  }
  // One image frame as a PNG data: URL, encoded synchronously. Not a blob: URL from
  // convertToBlob()/toBlob(): Chromium encodes those in an idle task of the main thread, and
  // on the beginFrame path the page gets idle time only after a frame it draws, so each still
  // waited for the idle task's 1 s fallback (100 stills: 100 s before frame 0). A data: URL
  // is also loaded by the renderer itself: showing a still makes no network request at all.
  let stillCanvas = null;
  function encodeStill(image) {
    if (!stillCanvas) stillCanvas = document.createElement("canvas");
    stillCanvas.width = image.displayWidth;
    stillCanvas.height = image.displayHeight;
    const context = stillCanvas.getContext("2d");
    context.clearRect(0, 0, stillCanvas.width, stillCanvas.height);
    context.drawImage(image, 0, 0);
    return stillCanvas.toDataURL("image/png");
  }
  async function decodeAnimation(url) {
    if (typeof ImageDecoder === "undefined" || !url || ownFrameUrls.has(url)) return null;
    try {
      const response = await realFetch(url);
      if (!response.ok) return null;
      const type = imageType(response, url);
      if (!Object.values(IMAGE_TYPES).includes(type) || !(await ImageDecoder.isTypeSupported(type))) return null;
      const decoder = new ImageDecoder({ data: await response.arrayBuffer(), type });
      try {
        await decoder.tracks.ready;
        const track = decoder.tracks.selectedTrack;
        if (!track || !track.animated) return null;
        await decoder.completed;
        const frames = [];
        let end = 0;
        for (let index = 0; index < track.frameCount; index++) {
          const { image } = await decoder.decode({ frameIndex: index, completeFramesOnly: true });
          // As Chromium plays them: a frame of 10 ms or less is shown for 100 ms.
          let duration = (image.duration || 0) / 1000;
          if (duration <= 10) duration = 100;
          end += duration;
          const still = encodeStill(image);
          image.close();
          ownFrameUrls.add(still);
          const keep = new Image(); // holds the still decoded in memory for backgrounds
          keep.src = still;
          await keep.decode();
          frames.push({ url: still, end, keep });
        }
        return { frames, total: end, plays: track.repetitionCount + 1 };
      } finally {
        decoder.close();
      }
    } catch (error) {
      return null; // not decodable here (cross-origin without CORS, say): left as it is
    }
  }
  const settledAnimations = new Map(); // absolute URL -> decoded animation | null, once known
  function animation(url) {
    if (!animatedSources.has(url)) {
      animatedSources.set(url, decodeAnimation(url).then((decoded) => {
        settledAnimations.set(url, decoded);
        return decoded;
      }));
    }
    return animatedSources.get(url);
  }
  function stillAt(decoded, elapsed) {
    const { frames, total, plays } = decoded;
    if (!(total > 0) || elapsed >= total * plays) return frames[frames.length - 1].url;
    const within = Math.max(0, elapsed) % total;
    for (const frame of frames) if (within < frame.end) return frame.url;
    return frames[frames.length - 1].url;
  }
  // Backgrounds are found by one scan at load, then on the elements that DOM mutations touch.
  let backgroundScan = null; // MutationObserver, from ready() on
  const BACKGROUND_URL = /url\("([^"]*)"\)/g;
  function trackBackground(element) {
    if (!(element instanceof Element) || animatedBackgrounds.has(element)) return;
    const value = getComputedStyle(element).backgroundImage;
    if (!value || value === "none" || !value.includes("url(")) return;
    const urls = [...value.matchAll(BACKGROUND_URL)].map((match) => match[1]).filter((url) => !ownFrameUrls.has(url));
    if (urls.length === 0) return;
    for (const url of urls) animation(url);
    animatedBackgrounds.set(element, { value, urls, start: now, shown: null });
  }
  function trackAnimatedImages() {
    for (const image of document.images) {
      const known = animatedImgs.get(image);
      const url = image.currentSrc || image.src;
      if (known && (url === known.url || url === known.shown || ownFrameUrls.has(url))) continue;
      if (!url || ownFrameUrls.has(url)) continue;
      animation(url);
      animatedImgs.set(image, { url, start: now, shown: null });
    }
    if (!backgroundScan) return;
    for (const record of backgroundScan.takeRecords()) {
      if (record.type === "attributes") {
        animatedBackgrounds.delete(record.target);
        trackBackground(record.target);
      }
      for (const node of record.addedNodes || []) {
        if (!(node instanceof Element)) continue;
        trackBackground(node);
        for (const element of node.querySelectorAll("*")) trackBackground(element);
      }
    }
  }
  function startBackgroundScan() {
    for (const element of document.querySelectorAll("*")) trackBackground(element);
    backgroundScan = new MutationObserver(() => {});
    backgroundScan.observe(document.documentElement, { subtree: true, childList: true, attributes: true, attributeFilter: ["class", "style", "id"] });
  }
  async function seekAnimatedImages(t) {
    const waits = [];
    for (const [image, known] of animatedImgs) {
      if (!image.isConnected) continue;
      const decoded = await animation(known.url);
      if (!decoded) continue;
      const still = stillAt(decoded, t - known.start);
      if (still === known.shown && image.src === still) continue;
      known.shown = still;
      if (image.srcset) image.srcset = still;
      image.src = still;
      waits.push(image.decode().catch(() => undefined));
    }
    for (const [element, known] of animatedBackgrounds) {
      if (!element.isConnected) {
        animatedBackgrounds.delete(element);
        continue;
      }
      let value = known.value;
      let changed = false;
      for (const url of known.urls) {
        const decoded = await animation(url);
        if (!decoded) continue;
        value = value.split(`url("${url}")`).join(`url("${stillAt(decoded, t - known.start)}")`);
        changed = true;
      }
      if (!changed || value === known.shown) continue;
      known.shown = value;
      element.style.setProperty("background-image", value, "important");
    }
    if (backgroundScan) backgroundScan.takeRecords(); // our own style changes
    await Promise.all(waits);
  }

  // ---- <video> and <audio> --------------------------------------------------------------------
  const MEDIA_SEEK_PAST = 0.001;
  const MEDIA_ERRORS = ["", "MEDIA_ERR_ABORTED", "MEDIA_ERR_NETWORK", "MEDIA_ERR_DECODE", "MEDIA_ERR_SRC_NOT_SUPPORTED"];
  const brokenMedia = new WeakSet(); // failed media the user allowed (--allow-missing-assets)
  function mediaFailure(media, detail) {
    const url = media.currentSrc || media.src || (media.querySelector("source") || {}).src || "";
    const message = `helios: the ${describeElement(media)} ${shortUrl(url)} cannot be played: ${detail}`;
    if (config.allowMissingAssets) {
      brokenMedia.add(media);
      console.warn(`${message} (rendered without it: --allow-missing-assets)`);
      return null;
    }
    return new HeliosAssetError(`${message} (fix or re-encode the file, or render anyway with --allow-missing-assets)`);
  }
  function mediaErrorText(media) {
    const error = media.error;
    if (!error) return "no source could be loaded";
    const code = MEDIA_ERRORS[error.code] || `error ${error.code}`;
    return error.message ? `${code} (${error.message})` : code;
  }
  // What is heard, and which media time is shown, follows one rule (docs/compositions.md, "Media
  // elements"). Each element gets a clock: it runs from `startAt` (virtual ms) at `rate`, from
  // media time `anchor`, or stands still when not `playing`. An element in the document at load
  // starts at data-helios-start; one that appears later (seen by a MutationObserver, so at the
  // virtual time of the callback that added it) starts then, plus its data-helios-start. Once
  // the page's script calls play(), pause(), sets currentTime or playbackRate, the clock
  // behaves as the browser's would. The element itself is never played: it is paused, and a
  // <video> is seeked to its clock's time at every frame. `__helios.seek` resolves with one
  // record per audible element, which the renderer mixes into the output (helios_render/_audio.py).
  const mediaProto = HTMLMediaElement.prototype;
  const realPause = mediaProto.pause;
  const realTime = Object.getOwnPropertyDescriptor(mediaProto, "currentTime");
  const realPaused = Object.getOwnPropertyDescriptor(mediaProto, "paused");
  const realRate = Object.getOwnPropertyDescriptor(mediaProto, "playbackRate");
  const mediaStates = new Map(); // element -> clock
  const mediaRanks = new Map(); // birth time -> elements that appeared then
  function mediaState(media) {
    let clock = mediaStates.get(media);
    if (clock) return clock;
    const rank = mediaRanks.get(now) || 0;
    mediaRanks.set(now, rank + 1);
    const offset = Number(media.dataset.heliosStart || 0) * 1000;
    clock = {
      key: `${media.localName}${media.id ? "#" + media.id : ""}@${now}ms:${rank}`,
      // In the document it follows the composition; detached (new Audio()), it waits for play().
      playing: media.isConnected,
      startAt: now + (Number.isFinite(offset) && offset > 0 ? offset : 0),
      anchor: 0,
      rate: realRate.get.call(media),
      connected: media.isConnected,
      stoppedAt: -Infinity, // when it last stopped being heard by a pause or a removal
    };
    if (media.preload === "none") media.preload = "metadata"; // the duration is needed
    mediaStates.set(media, clock);
    return clock;
  }
  function mediaClock(media, clock, t) {
    let time = clock.anchor;
    if (clock.playing && t > clock.startAt) time += ((t - clock.startAt) / 1000) * clock.rate;
    let ended = false;
    const duration = media.duration;
    if (Number.isFinite(duration) && duration > 0) {
      if (media.loop) time %= duration;
      else if (time >= duration) { time = duration; ended = true; }
    }
    return { time, ended, heard: clock.playing && t >= clock.startAt && !ended };
  }
  function reanchor(media, clock) {
    const { time, ended } = mediaClock(media, clock, now);
    clock.anchor = time;
    if (clock.startAt < now || !clock.playing) clock.startAt = now;
    return ended;
  }
  mediaProto.play = function play() {
    const clock = mediaState(this);
    const ended = reanchor(this, clock);
    if (ended) clock.anchor = 0;
    clock.playing = true;
    clock.startAt = now;
    return Promise.resolve();
  };
  function stopClock(media, clock) {
    if (mediaClock(media, clock, now).heard) clock.stoppedAt = now;
    reanchor(media, clock);
    clock.playing = false;
  }
  mediaProto.pause = function pause() {
    stopClock(this, mediaState(this));
    realPause.call(this);
  };
  Object.defineProperty(mediaProto, "currentTime", {
    configurable: true,
    enumerable: true,
    get() {
      const clock = mediaStates.get(this);
      return clock ? mediaClock(this, clock, now).time : realTime.get.call(this);
    },
    set(value) {
      const clock = mediaState(this);
      reanchor(this, clock);
      clock.anchor = Math.max(0, Number(value) || 0);
    },
  });
  Object.defineProperty(mediaProto, "paused", {
    configurable: true,
    enumerable: true,
    get() {
      const clock = mediaStates.get(this);
      return clock ? !clock.playing || mediaClock(this, clock, now).ended : realPaused.get.call(this);
    },
  });
  Object.defineProperty(mediaProto, "playbackRate", {
    configurable: true,
    enumerable: true,
    get() { return realRate.get.call(this); },
    set(value) {
      realRate.set.call(this, value); // throws where the browser would
      const clock = mediaState(this);
      if (clock.playing) reanchor(this, clock);
      clock.rate = realRate.get.call(this);
    },
  });
  function mediaIn(node, found) {
    if (node.nodeType !== 1) return;
    if (node.localName === "audio" || node.localName === "video") found.push(node);
    if (node.firstElementChild) for (const media of node.querySelectorAll("audio, video")) found.push(media);
  }
  function noticeMutations(mutations) {
    for (const mutation of mutations) {
      const added = [];
      for (const node of mutation.addedNodes) mediaIn(node, added);
      for (const media of added) if (media.isConnected) mediaState(media).connected = true;
      const removed = [];
      for (const node of mutation.removedNodes) mediaIn(node, removed);
      for (const media of removed) {
        const clock = mediaStates.get(media);
        if (!clock || media.isConnected || !clock.connected) continue;
        stopClock(media, clock); // the browser pauses an element taken out of the document
        clock.connected = false;
      }
    }
  }
  const mediaObserver = new MutationObserver(noticeMutations);
  mediaObserver.observe(document, { childList: true, subtree: true });
  // A <video> is seeked a little past its clock's time: a container stores frame times
  // rounded (WebM to the millisecond), so a seek to exactly k / fps may land just before the
  // frame that starts there and show the previous one.
  function mediaTarget(media, t) {
    let target = mediaClock(media, mediaState(media), t).time + MEDIA_SEEK_PAST;
    if (Number.isFinite(media.duration) && media.duration > 0) target = Math.min(target, media.duration);
    return target;
  }
  function whenMetadata(media) {
    if (media.readyState >= 1 || media.error || !(media.currentSrc || media.src)) return null;
    return new Promise((resolve) => {
      media.addEventListener("loadedmetadata", resolve, { once: true });
      media.addEventListener("error", resolve, { once: true });
    });
  }
  // Detached elements played by script are not in the document: wait for their durations too.
  function detachedMediaWaits() {
    const waits = [];
    for (const [media, clock] of mediaStates) {
      if (media.isConnected || !clock.playing) continue;
      const wait = whenMetadata(media);
      if (wait) waits.push(wait);
    }
    return waits;
  }
  function mediaRecords(t) {
    noticeMutations(mediaObserver.takeRecords());
    if (mediaStates.size === 0) return null;
    const records = [];
    const previous = t - 1000 / config.fps;
    for (const [media, clock] of mediaStates) {
      const { time, heard } = mediaClock(media, clock, t);
      const source = media.querySelector("source");
      const src = media.currentSrc || media.src || (source ? source.src : "");
      if (!src) continue;
      if (!heard) {
        // Stopped since the previous frame: say when, so the sound ends there exactly.
        if (clock.stoppedAt > previous) records.push({ key: clock.key, src, time, volume: 0, stopped: clock.stoppedAt / 1000 });
        continue;
      }
      if (media.muted || !(media.volume > 0) || !(clock.rate > 0)) continue;
      const duration = media.duration;
      records.push({
        key: clock.key,
        src,
        time,
        volume: media.volume,
        rate: clock.rate,
        loop: media.loop,
        duration: Number.isFinite(duration) ? duration : null,
        optional: media.hasAttribute("data-helios-optional"),
        since: clock.startAt / 1000,
      });
    }
    return records.length > 0 ? records : null;
  }

  // A <video> shows its clock's time; an <audio> has no picture, so it only needs its metadata.
  function seekMedia(t) {
    noticeMutations(mediaObserver.takeRecords());
    const waits = [];
    for (const media of document.querySelectorAll("video, audio")) {
      if (brokenMedia.has(media)) continue;
      if (!realPaused.get.call(media)) realPause.call(media);
      if (media.localName === "audio") {
        // No picture: it only needs its duration. A source that cannot be decoded is named
        // by the audio mix (or skipped there when the page marks it optional).
        const wait = whenMetadata(media);
        if (wait) waits.push(wait);
        continue;
      }
      if (media.error || (media.networkState === 3 && media.readyState === 0)) {
        const failure = mediaFailure(media, mediaErrorText(media));
        if (failure) waits.push(Promise.reject(failure));
        continue;
      }
      const target = mediaTarget(media, t);
      if (Math.abs(realTime.get.call(media) - target) > 1e-6 || media.readyState < 2) {
        awaitPicture(media);
        waits.push(new Promise((resolve, reject) => {
          const done = () => {
            media.removeEventListener("seeked", done);
            media.removeEventListener("error", failed, true);
            media.removeEventListener("loadeddata", check);
            resolve();
          };
          const failed = (event) => {
            // A failing <source> child: the next one may still play; the element has failed
            // once it has no source left.
            if (event.target !== media && media.networkState !== 3) {
              realSetTimeout(() => { if (media.networkState === 3 && media.readyState === 0) failed({ target: media }); }, 50);
              return;
            }
            media.removeEventListener("seeked", done);
            media.removeEventListener("error", failed, true);
            media.removeEventListener("loadeddata", check);
            const failure = mediaFailure(media, mediaErrorText(media));
            if (failure) reject(failure);
            else resolve();
          };
          const check = () => { if (!media.seeking && media.readyState >= 2) done(); };
          media.addEventListener("seeked", done);
          media.addEventListener("error", failed, true);
          media.addEventListener("loadeddata", check);
          if (media.readyState >= 1) realTime.set.call(media, target);
          else media.addEventListener("loadedmetadata", () => { realTime.set.call(media, mediaTarget(media, t)); }, { once: true });
          if (media.readyState >= 2 && !media.seeking) done();
        }));
      }
    }
    waits.push(...detachedMediaWaits());
    return waits;
  }

  // ---- <video>: the seeked picture reaches the compositor -------------------------------------
  // "seeked" fires on the main thread while the decoded picture travels on its own threads to
  // the compositor: a capture right after it can show the picture before the seek (seen on both
  // capture paths, once in a few hundred frames on a busy machine). Each video's presented
  // pictures are counted with requestVideoFrameCallback, which runs in the frame after the
  // compositor took a new one; a frame whose seek moved a visible video is captured only once
  // each such video presented one more. The screenshot path waits for up to
  // VIDEO_PRESENT_FRAMES animation frames here; on the beginFrame path, frames come only from
  // the renderer, so the seek's answer says `present: true` and the renderer issues frames
  // without a screenshot until `presented()` is true (for at most as many frames).
  const VIDEO_PRESENT_FRAMES = 8;
  const presentations = new WeakMap(); // <video> -> pictures presented so far
  let awaitedPictures = []; // [video, presentations before its seek]
  function countPresentations(video) {
    if (presentations.has(video)) return;
    presentations.set(video, 0);
    const count = () => {
      presentations.set(video, presentations.get(video) + 1);
      video.requestVideoFrameCallback(count);
    };
    video.requestVideoFrameCallback(count);
  }
  function awaitPicture(video) {
    if (video.localName !== "video" || typeof video.requestVideoFrameCallback !== "function") return;
    countPresentations(video);
    awaitedPictures.push([video, presentations.get(video)]);
  }
  /** Whether every video a seek moved has presented its new picture (hidden ones need not). */
  function presented() {
    awaitedPictures = awaitedPictures.filter(([video, before]) =>
      presentations.get(video) === before && video.isConnected && !video.error && video.getClientRects().length > 0);
    return awaitedPictures.length === 0;
  }
  /** Paint until the moved videos presented (bounded); whether it painted at all. */
  async function picturesPresented() {
    let frame = 0;
    for (; frame < VIDEO_PRESENT_FRAMES && !presented(); frame++) await painted();
    awaitedPictures = [];
    return frame > 0;
  }

  // ---- Queued tasks: MessageChannel messages the page posted --------------------------------
  // Frameworks schedule work as tasks (React's scheduler posts to a MessageChannel). Every
  // message posted on a channel the page made is counted until it is dispatched, so that a
  // frame is captured only once they have run (bounded: see settleTasks).
  const portPeers = new WeakMap(); // port -> its entangled port
  const inFlight = new Map(); // receiving port -> messages posted to it, not yet dispatched
  const startedPorts = new WeakSet();
  const untracked = new WeakSet(); // closed or transferred ports
  if (RealMessageChannel) {
    const HeliosMessageChannel = function MessageChannel() {
      if (!new.target) throw new TypeError("Failed to construct 'MessageChannel': Please use the 'new' operator");
      const channel = new RealMessageChannel();
      for (const [port, peer] of [[channel.port1, channel.port2], [channel.port2, channel.port1]]) {
        portPeers.set(port, peer);
        port.addEventListener("message", () => {
          const count = inFlight.get(port);
          if (count > 1) inFlight.set(port, count - 1);
          else inFlight.delete(port);
        });
      }
      return channel;
    };
    HeliosMessageChannel.prototype = RealMessageChannel.prototype;
    window.MessageChannel = HeliosMessageChannel;
    const proto = MessagePort.prototype;
    const realPost = proto.postMessage;
    const realStart = proto.start;
    const realClose = proto.close;
    const onmessage = Object.getOwnPropertyDescriptor(proto, "onmessage");
    const forget = (port) => { untracked.add(port); inFlight.delete(port); };
    proto.postMessage = function postMessage(message, transfer) {
      const list = Array.isArray(transfer) ? transfer : (transfer && transfer.transfer) || [];
      for (const item of list) if (item instanceof MessagePort) forget(item);
      const result = realPost.apply(this, arguments);
      const peer = portPeers.get(this);
      if (peer && !untracked.has(peer) && !untracked.has(this)) inFlight.set(peer, (inFlight.get(peer) || 0) + 1);
      return result;
    };
    proto.start = function start() { startedPorts.add(this); return realStart.call(this); };
    proto.close = function close() { forget(this); return realClose.call(this); };
    if (onmessage && onmessage.set) {
      Object.defineProperty(proto, "onmessage", {
        configurable: true,
        enumerable: onmessage.enumerable,
        get() { return onmessage.get.call(this); },
        set(value) { if (value) startedPorts.add(this); onmessage.set.call(this, value); },
      });
    }
  }
  function tasksPending() {
    for (const port of inFlight.keys()) if (startedPorts.has(port)) return true;
    return false;
  }
  //: Macrotask rounds, and real milliseconds, that a frame waits at most for the page's tasks.
  const SETTLE_ROUNDS = 50;
  const SETTLE_MS = 200;
  async function settleTasks() {
    const deadline = realNow() + SETTLE_MS;
    for (let round = 0; round < SETTLE_ROUNDS && realNow() < deadline; round++) {
      if (!tasksPending()) return;
      await flushMicrotasks();
    }
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
      } else if (image.naturalWidth > 0 && image.decode && decodedImages.get(image) !== image.currentSrc) {
        const source = image.currentSrc;
        waits.push(image.decode().then(() => { decodedImages.set(image, source); }, () => undefined));
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

  // On the screenshot path the browser draws on its own clock: a screenshot taken right after
  // a seek may show a composited layer (a pulsing, turning badge) with the raster of the
  // frame before. One frame of the browser's own after the seek lets it commit and raster
  // the seeked state first. (Under beginFrame control, the capture itself runs every stage.)
  function painted() {
    return new Promise((resolve) => { realRequestAnimationFrame(() => resolve()); });
  }

  // ---- seek -----------------------------------------------------------------------------------
  // A frame that nothing can hold up (no timer due, no media element, no Helios seek hook, no
  // child frame, no delay handle, no task in flight, no loading font, no image still to load or
  // decode, no animated image to step) is seeked in microtask turns only: its promise settles
  // in the task of the Runtime.evaluate that asked, so the answer needs no task of its own.
  // Anything the page's callbacks start that could make the frame wait sends it on through
  // the full path. (The full path waits for a whole task after the callbacks; the quick one
  // gives their promise chains MICROTASK_TURNS turns.)
  const MICROTASK_TURNS = 8;
  const videos = document.getElementsByTagName("video");
  const audios = document.getElementsByTagName("audio");
  const decodedImages = new WeakMap(); // <img> -> the currentSrc its decode() resolved for
  let profile = null; // [workMs, settleMs] per seek while the renderer profiles, else null
  function mayWait(t, timersToo) {
    if ((timersToo && nextTimer(t)) || delays.size > 0 || tasksPending()) return true;
    if (videos.length > 0 || audios.length > 0 || window.frames.length > 0) return true;
    const helios = window.helios;
    if (helios && typeof helios.seek === "function") return true;
    if (document.fonts && document.fonts.status !== "loaded") return true;
    for (const image of document.images) {
      if (!image.complete) return true;
      if (image.naturalWidth > 0 && image.decode && decodedImages.get(image) !== image.currentSrc) return true;
    }
    for (const [image, known] of animatedImgs) {
      if (!image.isConnected) continue;
      if (!settledAnimations.has(known.url)) return true;
      const decoded = settledAnimations.get(known.url);
      if (decoded && (stillAt(decoded, t - known.start) !== known.shown || image.src !== known.shown)) return true;
    }
    for (const [element, known] of animatedBackgrounds) {
      if (!element.isConnected) continue;
      for (const url of known.urls) if (!settledAnimations.has(url) || settledAnimations.get(url)) return true;
    }
    return false;
  }

  // ---- armed seeks: under beginFrame control, a frame is seeked inside its own capture ------
  // `seek(f, t, false, last)` arms frames f+1..last: each is seeked by a real animation-frame
  // callback of the main frame that the renderer's next beginFrame runs, so that frame needs
  // one command (the capture) instead of two. The renderer moves each new frame's time on by
  // at least one interval, and a retried capture of the same frame by 1/64 of one, so a main
  // frame that comes less than half an interval after the one before is a retry: it never
  // seeks again. Only a quick seek can finish before the main frame draws: anything else (a
  // frame that may wait, a callback that threw, a page with media) disarms, and the report
  // says so; the renderer then drops the image, waits for the seek with `settled()`, and
  // captures that frame again. Each armed main frame is reported with the binding the
  // renderer installs: `{frame, ok}`, or `{frame, again: true}` for a retry of `frame`.
  const FRAME_BINDING = "__heliosFrameShown";
  const reportFrame = window === window.top && typeof window[FRAME_BINDING] === "function" ? window[FRAME_BINDING] : null;
  if (reportFrame) { try { delete window[FRAME_BINDING]; } catch (error) { /* left in place */ } }
  let armed = null; // { last, interval, drawnAt: the rAF timestamp of the last main frame }
  let armedSeek = null; // the promise of an armed seek that did not finish in its main frame
  let diverted = null; // called when an armed seek leaves the quick path
  function arm(frame, last) {
    if (!reportFrame || !(last > frame)) return;
    armed = { last, interval: 1000 / config.fps, drawnAt: null };
    realRequestAnimationFrame(armedFrame);
  }
  function armedFrame(timestamp) {
    const plan = armed;
    if (!plan) return;
    const first = plan.drawnAt === null; // the capture of the frame that armed: drawn as seeked
    const retry = !first && timestamp - plan.drawnAt < plan.interval / 2;
    if (first || retry) {
      if (first) plan.drawnAt = timestamp;
      realRequestAnimationFrame(armedFrame);
      if (retry) reportFrame(JSON.stringify({ frame: currentFrame, again: true }));
      return;
    }
    plan.drawnAt = timestamp;
    const frame = currentFrame + 1;
    let reported = false;
    const report = (ok, same = false) => {
      if (reported) return;
      reported = true;
      reportFrame(JSON.stringify(same ? { frame, ok, same } : { frame, ok }));
    };
    if (frame > plan.last || mediaStates.size > 0) { // media records go with a seek's answer
      armed = null;
      report(false);
      return;
    }
    // A frame that may wait leaves the quick path inside seekNow, which calls `diverted`: the
    // seek goes on, and the renderer's settled() waits for it.
    diverted = () => { armed = null; report(false); };
    const t = (frame * 1000 * config.fpsDenominator) / config.fpsNumerator;
    const seeking = seekNow(frame, t, false);
    armedSeek = seeking;
    // A quick seek settles in this callback's microtask checkpoint, before the main frame goes
    // on to style, layout and paint: the frame about to be drawn is `frame`.
    seeking.then(() => {
      diverted = null;
      if (reported) return;
      armedSeek = null;
      // A frame the static-frame detector found unchanged ends the armed run: the frames
      // after it are seeked on their own, so that an unchanged one needs no capture.
      const same = frameUnchanged;
      if (armed === plan && frame < plan.last && !same) realRequestAnimationFrame(armedFrame);
      else if (armed === plan) armed = null;
      report(true, same);
    }, () => {
      diverted = null;
      armed = null;
      report(false);
    });
  }
  /** Disarm, wait for an armed seek still under way (rethrowing its error), say the frame. */
  async function settled() {
    armed = null;
    const seeking = armedSeek;
    armedSeek = null;
    if (seeking) await seeking;
    return currentFrame;
  }

  // `reuse`: the renderer holds the image of the frame before and reuses it for this one
  // when nothing changed (see "Static frames"): such a frame is neither painted nor armed,
  // and its answer says so ({same: true, media}).
  async function seek(frame, t, paint = false, last = null, reuse = false) {
    armed = null;
    awaitedPictures = [];
    frameUnchanged = false;
    reuseOffered = reuse === true;
    let shown;
    try {
      shown = await seekNow(frame, t, paint);
    } finally {
      reuseOffered = false;
    }
    const same = reuse === true && frameUnchanged;
    // Without paint (the beginFrame path, or a replayed frame) a moved video's picture is the
    // capture's to await (see "the seeked picture reaches the compositor"): the frames it
    // draws for that must not run an armed seek, so such a frame arms nothing.
    if (!same && !paint && awaitedPictures.length > 0 && !presented()) return { present: true, media: shown };
    awaitedPictures = [];
    if (last !== null && !same) arm(frame, last);
    return same ? { same: true, media: shown } : shown;
  }

  // `replay(from, to, budgetMs)` runs frames from..to without paint, one after another within
  // this one call: the state an rAF page builds frame by frame, before a chunk that starts
  // late, without a round trip per frame. Each frame is the seek a replayed frame gets on its
  // own (its time as an armed seek computes it, which is the renderer's to the last bit), with
  // a task boundary after it as a call of its own had: a message the page posted to itself in
  // a frame is handled before the next one, as in a whole render. It stops after the frame
  // that reaches `budgetMs` of real time, so that a call lasts about that plus one frame (the
  // renderer's timeout of one frame bounds it), and returns the last frame it ran. The first
  // frame that throws stops it, and `heliosRender.frame` then names that frame.
  async function replay(from, to, budgetMs) {
    const started = realNow();
    for (let frame = from; frame <= to; frame++) {
      await seek(frame, (frame * 1000 * config.fpsDenominator) / config.fpsNumerator, false);
      if (frame === to || realNow() - started >= budgetMs) return frame;
      await flushMicrotasks();
    }
    return currentFrame;
  }

  async function seekNow(frame, t, paint) {
    const started = profile ? realNow() : 0;
    currentFrame = frame;
    errors.length = 0;
    if (t < now) throw new HeliosRuntimeError(`helios: cannot seek back in time (from ${now} ms to ${t} ms)`);
    trackAnimations();
    if (mayWait(t, true)) {
      if (diverted) diverted();
      return seekFully(frame, t, paint, started);
    }
    now = t;
    window.__HELIOS_VIRTUAL_TIME__ = t;
    if (runAnimationCallbacks(clockReading(t))) {
      for (let turn = 0; turn < MICROTASK_TURNS; turn++) await null;
      trackAnimations();
      if (mayWait(t, false)) {
        if (diverted) diverted();
        return settle(frame, t, paint, started);
      }
    }
    seekAnimations(t);
    seekSvgTimelines(t);
    if (profile) profile.push(realNow() - started, 0);
    if (errors.length > 0) throw errors[0];
    await paintUnlessUnchanged(t, paint);
    return mediaRecords(t); // null when nothing is heard: the common case stays cheap
  }

  async function seekFully(frame, t, paint, started) {
    await runTimersUntil(t);
    now = t;
    window.__HELIOS_VIRTUAL_TIME__ = t;
    await runAnimationFrame(clockReading(t));
    return settle(frame, t, paint, started);
  }

  async function settle(frame, t, paint, started) {
    await settleTasks();
    trackAnimations();
    seekAnimations(t);
    seekSvgTimelines(t);
    await seekAnimatedImages(t);
    const waits = seekMedia(t);
    const helios = window.helios;
    if (helios && typeof helios.seek === "function") {
      await helios.seek(heliosFrame(helios, frame, t));
      if (typeof helios.waitUntilStable === "function") await helios.waitUntilStable();
    }
    for (const child of sameOriginChildren()) waits.push(child.seek(frame, t));
    waits.push(...imagesReady());
    if (document.fonts) waits.push(document.fonts.ready);
    waits.push(waitDelays());
    const settling = profile ? realNow() : 0;
    await Promise.all(waits);
    if (profile) profile.push(settling - started, realNow() - settling);
    // What the waits resolved may have queued tasks and mutations of its own.
    await settleTasks();
    trackAnimations();
    seekAnimations(t);
    seekSvgTimelines(t);
    await seekAnimatedImages(t);
    if (errors.length > 0) throw errors[0];
    await paintUnlessUnchanged(t, paint);
    return mediaRecords(t);
  }

  // ---- Helios core: its frames count at the composition's own fps ---------------------------
  // `helios.fps` is a signal (`.value`) in Helios core, a number in look-alikes; getState()
  // has it too. Frame k of the render is at time k / fps, which is composition frame
  // t * compositionFps (fractional when the rates differ; exactly k when they are equal).
  function compositionTiming(helios) {
    const read = (value) => (value && typeof value === "object" && "value" in value ? value.value : value);
    let fps = read(helios.fps);
    let duration = read(helios.duration);
    if (typeof helios.getState === "function" && (typeof fps !== "number" || typeof duration !== "number")) {
      try {
        const state = helios.getState() || {};
        if (typeof fps !== "number") fps = state.fps;
        if (typeof duration !== "number") duration = state.duration;
      } catch (error) { /* no state */ }
    }
    return {
      fps: typeof fps === "number" && Number.isFinite(fps) && fps > 0 ? fps : null,
      duration: typeof duration === "number" && Number.isFinite(duration) && duration > 0 ? duration : null,
    };
  }
  function heliosFrame(helios, frame, t) {
    const { fps } = compositionTiming(helios);
    if (fps === null || Math.abs(fps - config.fps) < 1e-9) return frame;
    return Math.round((t / 1000) * fps * 1e6) / 1e6;
  }

  async function ready() {
    if (document.readyState !== "complete") {
      await new Promise((resolve) => window.addEventListener("load", resolve, { once: true }));
    }
    if (document.fonts) await document.fonts.ready;
    await Promise.all(imagesReady());
    findDeclarativeShadowRoots();
    startBackgroundScan();
    trackAnimations();
    const children = sameOriginChildren();
    await Promise.all(children.map((child) => child.ready()));
    return reportFrame !== null; // whether seeks can be armed (see arm())
  }

  function pending() {
    const labels = [...delays.values()];
    for (const image of document.images) if (!image.complete) labels.push(`image ${image.currentSrc || image.src}`);
    for (const media of document.querySelectorAll("video, audio")) {
      if (media.seeking || media.readyState < (media.localName === "audio" ? 1 : 2)) labels.push(`media ${media.currentSrc || media.src}`);
    }
    if (document.fonts && document.fonts.status !== "loaded") labels.push("fonts");
    for (const child of sameOriginChildren()) labels.push(...child.pending());
    return labels;
  }

  // ---- Static frames: whether anything on screen can have changed since the last seek -------
  // With config.skipStatic, every seek ends with a verdict (`frameUnchanged`): true when
  // nothing the runtime controls or watches can have changed the picture since the seek
  // before, so the renderer may reuse that frame's image instead of capturing (see
  // docs/architecture.md, "Static frames"). When in doubt the verdict is "changed". It is
  // "changed" when, since the last verdict:
  // * a timer, an animation-frame callback or a message task of the page ran;
  // * the DOM changed (a MutationObserver on the document and every known shadow root), an
  //   element or font finished loading, a stylesheet, selection, form control, scroll
  //   position, focus, canvas (2D, WebGL, WebGPU), animation or keyframe effect was changed
  //   through its API;
  // * an animation (CSS animation or transition, WAAPI) appeared, went away, is not held by
  //   the runtime, runs on another timeline, or its output moved: its effect's computed
  //   progress (after easing, so a steps() hold does not move) or iteration changed. An
  //   animation in its delay, or filling after its end, does not move;
  // and always while the page has what plays on its own: a <video>, an <audio controls>,
  // SMIL animations, an iframe, a plugin or <marquee>, an image that may animate and could
  // not be decoded into stills, an image or font still loading, a focused text field (its
  // caret blinks), a canvas handed to a worker, a Helios-core seek hook, or a setter on
  // window.__HELIOS_VIRTUAL_TIME__.
  let frameUnchanged = false; // the verdict of the last seek
  let reuseOffered = false; // the renderer holds the previous frame's image (see seek)
  let pageChanged = true; // something changed since the last verdict (nothing seen yet)
  let playsOnItsOwn = false; // a canvas went to a worker: frames may change at any time
  function noteChange() { pageChanged = true; }
  const staticWatch = config.skipStatic ? watchForChanges() : null;

  function watchForChanges() {
    const markingCall = (fn) => function (...args) { pageChanged = true; return fn.apply(this, args); };
    const hookMethods = (proto, names) => {
      if (!proto) return;
      for (const name of names) {
        const found = Object.getOwnPropertyDescriptor(proto, name);
        if (!found || typeof found.value !== "function") continue;
        Object.defineProperty(proto, name, { ...found, value: markingCall(found.value) });
      }
    };
    const hookSetters = (proto, names) => {
      if (!proto) return;
      for (const name of names) {
        const found = Object.getOwnPropertyDescriptor(proto, name);
        if (!found || typeof found.set !== "function") continue;
        const set = found.set;
        Object.defineProperty(proto, name, { ...found, set(value) { pageChanged = true; set.call(this, value); } });
      }
    };
    // The page's callbacks: timers, animation frames, message tasks.
    const runs = (fn) => (typeof fn === "function" ? markingCall(fn) : fn);
    for (const name of ["setTimeout", "setInterval"]) {
      const schedule = window[name];
      window[name] = function (fn, delay, ...args) {
        if (typeof fn !== "function") {
          const code = String(fn);
          fn = () => (0, eval)(code);
        }
        return schedule(runs(fn), delay, ...args);
      };
    }
    const requestFrame = window.requestAnimationFrame;
    window.requestAnimationFrame = (callback) => requestFrame(runs(callback));
    const Channel = window.MessageChannel;
    if (Channel) {
      const listen = EventTarget.prototype.addEventListener;
      const WatchedChannel = function MessageChannel() {
        if (!new.target) throw new TypeError("Failed to construct 'MessageChannel': Please use the 'new' operator");
        const channel = Reflect.construct(Channel, [], new.target);
        listen.call(channel.port1, "message", noteChange);
        listen.call(channel.port2, "message", noteChange);
        return channel;
      };
      WatchedChannel.prototype = Channel.prototype;
      window.MessageChannel = WatchedChannel;
    }
    window.addEventListener("message", noteChange, true);
    // Loads, fonts, scrolling.
    document.addEventListener("load", noteChange, true);
    document.addEventListener("error", noteChange, true);
    document.addEventListener("scroll", noteChange, true);
    if (document.fonts) {
      document.fonts.addEventListener("loadingdone", noteChange);
      document.fonts.addEventListener("loadingerror", noteChange);
    }
    hookMethods(window.FontFaceSet && FontFaceSet.prototype, ["add", "delete", "clear"]);
    // Stylesheets, selection, highlights, form controls, scrolling, focus, popovers.
    for (const proto of [window.CSSStyleSheet && CSSStyleSheet.prototype, window.CSSGroupingRule && CSSGroupingRule.prototype]) {
      hookMethods(proto, ["insertRule", "deleteRule", "addRule", "removeRule", "replace", "replaceSync"]);
    }
    hookMethods(CSSStyleDeclaration.prototype, ["setProperty", "removeProperty"]);
    hookSetters(CSSStyleDeclaration.prototype, ["cssText"]);
    hookSetters(window.CSSStyleRule && CSSStyleRule.prototype, ["selectorText"]);
    hookMethods(window.CSSKeyframesRule && CSSKeyframesRule.prototype, ["appendRule", "deleteRule"]);
    hookSetters(window.CSSKeyframesRule && CSSKeyframesRule.prototype, ["name"]);
    hookSetters(window.CSSKeyframeRule && CSSKeyframeRule.prototype, ["keyText"]);
    hookMethods(window.MediaList && MediaList.prototype, ["appendMedium", "deleteMedium"]);
    hookSetters(window.MediaList && MediaList.prototype, ["mediaText"]);
    hookSetters(window.StyleSheet && StyleSheet.prototype, ["disabled"]);
    hookSetters(Document.prototype, ["adoptedStyleSheets"]);
    hookSetters(window.ShadowRoot && ShadowRoot.prototype, ["adoptedStyleSheets"]);
    if (window.CSS && typeof CSS.registerProperty === "function") CSS.registerProperty = markingCall(CSS.registerProperty);
    hookMethods(window.Selection && Selection.prototype, [
      "addRange", "removeRange", "removeAllRanges", "empty", "collapse", "setPosition", "collapseToStart",
      "collapseToEnd", "extend", "selectAllChildren", "setBaseAndExtent", "modify", "deleteFromDocument"]);
    hookMethods(window.HighlightRegistry && HighlightRegistry.prototype, ["set", "delete", "clear"]);
    hookMethods(window.Highlight && Highlight.prototype, ["add", "delete", "clear"]);
    hookMethods(Document.prototype, ["execCommand", "startViewTransition"]);
    for (const proto of [HTMLInputElement.prototype, HTMLTextAreaElement.prototype]) {
      hookSetters(proto, ["value", "checked", "indeterminate", "valueAsNumber", "valueAsDate", "selectionStart", "selectionEnd", "selectionDirection"]);
      hookMethods(proto, ["setRangeText", "setSelectionRange", "select", "stepUp", "stepDown"]);
    }
    hookSetters(HTMLSelectElement.prototype, ["value", "selectedIndex"]);
    hookSetters(HTMLOptionElement.prototype, ["selected"]);
    hookSetters(Element.prototype, ["scrollTop", "scrollLeft"]);
    hookMethods(Element.prototype, ["scroll", "scrollTo", "scrollBy", "scrollIntoView", "showPopover", "hidePopover", "togglePopover"]);
    for (const name of ["scroll", "scrollTo", "scrollBy"]) if (typeof window[name] === "function") window[name] = markingCall(window[name]);
    hookMethods(HTMLElement.prototype, ["focus", "blur"]);
    hookMethods(window.SVGElement && SVGElement.prototype, ["focus", "blur"]);
    hookMethods(window.HTMLDialogElement && HTMLDialogElement.prototype, ["show", "showModal", "close"]);
    // Drawing: every call that draws or clears, on every kind of canvas context.
    const drawing = (proto) => proto ? Object.getOwnPropertyNames(proto).filter((name) => {
      if (name === "constructor" || /^(get|is|create|measure|check)/.test(name)) return false;
      const found = Object.getOwnPropertyDescriptor(proto, name);
      return found && typeof found.value === "function";
    }) : [];
    for (const Context of [window.CanvasRenderingContext2D, window.OffscreenCanvasRenderingContext2D]) {
      if (Context) hookMethods(Context.prototype, drawing(Context.prototype));
    }
    for (const Context of [window.WebGLRenderingContext, window.WebGL2RenderingContext]) {
      if (Context) hookMethods(Context.prototype, ["drawArrays", "drawElements", "drawArraysInstanced", "drawElementsInstanced", "drawRangeElements", "drawBuffers", "clear", "clearBufferfv", "clearBufferiv", "clearBufferuiv", "clearBufferfi", "blitFramebuffer"]);
    }
    hookMethods(window.ImageBitmapRenderingContext && ImageBitmapRenderingContext.prototype, ["transferFromImageBitmap"]);
    hookMethods(window.GPUQueue && GPUQueue.prototype, ["submit", "copyExternalImageToTexture", "writeTexture"]);
    const handOver = HTMLCanvasElement.prototype.transferControlToOffscreen;
    if (handOver) {
      HTMLCanvasElement.prototype.transferControlToOffscreen = function transferControlToOffscreen() {
        playsOnItsOwn = true;
        return handOver.call(this);
      };
    }
    // Animations changed by the page through their API (the runtime itself only pauses them
    // and sets their current time, which the verdict compares by their output).
    hookMethods(Animation.prototype, ["play", "cancel", "finish", "reverse", "updatePlaybackRate", "persist", "commitStyles"]);
    hookSetters(Animation.prototype, ["playbackRate", "startTime", "effect", "timeline"]);
    hookMethods(window.AnimationEffect && AnimationEffect.prototype, ["updateTiming"]);
    hookMethods(window.KeyframeEffect && KeyframeEffect.prototype, ["setKeyframes"]);
    hookSetters(window.KeyframeEffect && KeyframeEffect.prototype, ["target", "pseudoElement", "composite", "iterationComposite"]);
    // The DOM, in the document and in every shadow root the runtime knows of.
    const observer = new MutationObserver(noteChange);
    const options = { subtree: true, childList: true, attributes: true, characterData: true };
    observer.observe(document, options);
    const observed = new WeakSet();
    return {
      /** Whether the DOM changed (and watch shadow roots found since). */
      takeMutations() {
        for (const root of shadowRoots) {
          if (observed.has(root)) continue;
          observed.add(root);
          observer.observe(root, options);
        }
        return observer.takeRecords().length > 0;
      },
      animations: new Map(), // Animation -> its output at the last verdict
      keyframes: new WeakMap(), // effect -> keyframeSteps(), until the page changes anything
      smilChecked: new WeakMap(), // outermost <svg> -> whether it holds SMIL animations
      marquees: document.getElementsByTagName("marquee"),
      objects: document.getElementsByTagName("object"),
    };
  }

  /** Whether an animation's output (or its being there) changed since the last verdict. */
  function animationsMoved() {
    const known = staticWatch.animations;
    let moved = false;
    let kept = 0;
    const outputs = new Map();
    for (const animation of tracked.keys()) {
      let output;
      try {
        output = animationOutput(animation);
      } catch (error) {
        output = NaN;
      }
      outputs.set(animation, output);
      if (!known.has(animation)) {
        moved = true;
        continue;
      }
      kept++;
      if (!(known.get(animation) === output)) moved = true; // NaN: never equal
    }
    if (kept !== known.size) moved = true; // one went away
    staticWatch.animations = outputs;
    return moved;
  }
  /** A value that is the same at two times only if the animation shows the same there: its
   * state, the effect's progress after the effect's easing, and its iteration; within a
   * steps() interval of keyframes, the step instead of the progress. NaN when it moves on
   * its own (not held by the runtime, or on a scroll or view timeline). */
  function animationOutput(animation) {
    const timeline = animation.timeline;
    const playState = realPlayState(animation); // held by the runtime: "paused" (or "idle")
    if (playState === "running") return NaN;
    if (timeline && RealDocumentTimeline && !(timeline instanceof RealDocumentTimeline)) return NaN;
    const effect = animation.effect;
    if (!effect) return playState;
    const timing = effect.getComputedTiming();
    if (timing.progress === null) return `${playState}:-`;
    const step = keyframeStep(effect, timing.progress);
    return `${playState}:${step === null ? timing.progress : step}:${timing.currentIteration}`;
  }
  // steps(n[, position]), step-start, step-end: the number of steps; 0 for any other easing.
  function stepCount(easing) {
    if (easing === "step-start" || easing === "step-end") return 1;
    const match = /^steps\(\s*(\d+)/.exec(easing || "");
    return match ? Number(match[1]) : 0;
  }
  const KEYFRAME_FIELDS = new Set(["offset", "computedOffset", "easing", "composite"]);
  // An effect's keyframes reduced to what keyframeStep needs, or null when steps cannot be
  // told apart safely (a keyframe with properties of its own: per-property intervals).
  function keyframeSteps(effect) {
    const cache = staticWatch.keyframes;
    if (cache.has(effect)) return cache.get(effect);
    let found = null;
    if (typeof effect.getKeyframes === "function") {
      const frames = effect.getKeyframes();
      const names = (frame) => Object.keys(frame).filter((key) => !KEYFRAME_FIELDS.has(key)).sort().join(",");
      const first = frames.length > 1 ? names(frames[0]) : null;
      if (first !== null && frames.every((frame) => names(frame) === first)) {
        found = frames.map((frame) => ({ offset: frame.computedOffset, steps: stepCount(frame.easing) }));
      }
    }
    cache.set(effect, found);
    return found;
  }
  // Within an interval of keyframes whose easing is steps(n): which step shows (the same
  // through a hold); null elsewhere, or within a millionth of a step's edge.
  function keyframeStep(effect, progress) {
    const frames = keyframeSteps(effect);
    if (!frames || !(progress >= 0 && progress <= 1)) return null;
    let index = -1;
    for (let i = 0; i < frames.length; i++) if (frames[i].offset <= progress) index = i;
    if (index < 0 || index >= frames.length - 1) return null;
    const { offset, steps } = frames[index];
    const span = frames[index + 1].offset - offset;
    if (!(steps > 0) || !(span > 0)) return null;
    const position = ((progress - offset) / span) * steps;
    if (Math.abs(position - Math.round(position)) < 1e-6) return null;
    return `s${index}.${Math.floor(position)}`;
  }

  const SMIL = "animate, set, animateTransform, animateMotion, animateColor, discard";
  /** Whether something on the page plays on its own clock, or may still change by itself. */
  function changesOnItsOwn(mutated) {
    if (playsOnItsOwn || videos.length > 0 || window.frames.length > 0) return true;
    if (staticWatch.marquees.length > 0 || staticWatch.objects.length > 0 || document.embeds.length > 0) return true;
    for (const audio of audios) if (audio.controls) return true;
    const helios = window.helios;
    if (helios && typeof helios.seek === "function") return true;
    const hook = Object.getOwnPropertyDescriptor(window, "__HELIOS_VIRTUAL_TIME__");
    if (hook && hook.set) return true;
    if (document.fonts && document.fonts.status !== "loaded") return true;
    const active = document.activeElement;
    if (active && (active.isContentEditable || active.localName === "input" || active.localName === "textarea")) return true;
    for (const svg of svgTimelines.keys()) {
      if (!svg.isConnected) continue;
      let smil = mutated ? undefined : staticWatch.smilChecked.get(svg);
      if (smil === undefined) {
        smil = svg.querySelector(SMIL) !== null;
        staticWatch.smilChecked.set(svg, smil);
      }
      if (smil) return true;
    }
    for (const image of document.images) if (!image.complete) return true;
    for (const [image, known] of animatedImgs) {
      if (image.isConnected && mayAnimateUnseen(known.url)) return true;
    }
    for (const [element, known] of animatedBackgrounds) {
      if (!element.isConnected) continue;
      for (const url of known.urls) if (mayAnimateUnseen(url)) return true;
    }
    return false;
  }
  /** Whether an image may animate on the browser's clock: not decoded into stills yet, or
   * not decodable here (cross-origin) and not of a kind that never animates, or an SVG image
   * with SMIL or CSS animations of its own. (A decoded animation shows the runtime's stills:
   * changing one is a DOM change.) */
  function mayAnimateUnseen(url) {
    if (!settledAnimations.has(url)) return true;
    if (settledAnimations.get(url)) return false;
    if (/\.(jpe?g|bmp|ico)(?:[?#]|$)/i.test(url) || /^data:image\/(jpeg|bmp)/i.test(url)) return false;
    if (/\.svg(?:[?#]|$)/i.test(url) || /^data:image\/svg/i.test(url)) return svgAnimates(url);
    if (typeof ImageDecoder === "undefined") return true;
    if (url.startsWith("data:") || url.startsWith("blob:")) return false;
    try {
      return new URL(url, location.href).origin !== location.origin;
    } catch (error) {
      return true;
    }
  }
  const svgImages = new Map(); // SVG image URL -> whether it animates (undefined: not known yet)
  function svgAnimates(url) {
    if (svgImages.has(url)) return svgImages.get(url) !== false;
    svgImages.set(url, undefined);
    realFetch(url).then((response) => (response.ok ? response.text() : null)).then((text) => {
      svgImages.set(url, text === null || /<(animate|set|animateTransform|animateMotion|animateColor)\b|@keyframes|animation|transition/i.test(text));
    }, () => svgImages.set(url, true));
    return true;
  }

  /** The verdict of this seek (see above); resets what was noted. Called once per seek. */
  function judgeFrame() {
    if (staticWatch === null) return false;
    let changed = pageChanged;
    pageChanged = false;
    const mutated = staticWatch.takeMutations();
    if (changed || mutated) staticWatch.keyframes = new WeakMap(); // keyframes may have changed
    if (animationsMoved() || mutated) changed = true;
    if (!changed && changesOnItsOwn(mutated)) changed = true;
    return !changed;
  }
  // Every seek ends here, before the screenshot path's wait for a painted frame: a frame
  // that the renderer reuses (unchanged, and it holds the one before) is not painted.
  async function paintUnlessUnchanged(t, paint) {
    frameUnchanged = judgeFrame();
    if (paint && !(frameUnchanged && reuseOffered)) {
      // An animation frame that saw the pictures presented is as late as painted()'s.
      if (!(awaitedPictures.length > 0 && await picturesPresented())) await painted();
    }
  }

  // ---- Length: where the page's finite animations end (issue 22) ---------------------------
  // `__helios.length()`, after ready(): what the page declares (<meta name="helios:duration">,
  // "helios:fps", "helios:size"), and every animation started by the end of the load with the
  // virtual time (ms) at which it ends: CSS animations and transitions and Web Animations
  // (delays, iterations and endDelay included), SVG SMIL, GSAP's global timeline, Lottie,
  // and media elements that play. One that never ends is listed in `unbounded`. The renderer
  // decides what the length is (helios_render/_model/length.py).
  const LENGTH_WAIT_MS = 2000; // real ms the metadata of media and Lottie files get at most
  const LENGTH_LIST = 20; // most entries of each list returned
  function declaredMeta(name) {
    const meta = document.querySelector(`meta[name="helios:${name}"]`);
    return meta ? String(meta.getAttribute("content") || "") : null;
  }
  function animationLabel(animation) {
    const target = animation.effect && animation.effect.target;
    const where = target && target.tagName ? describeElement(target) : "";
    if (typeof CSSAnimation !== "undefined" && animation instanceof CSSAnimation) {
      return { kind: "css-animation", name: `CSS animation '${animation.animationName}'${where ? ` on ${where}` : ""}` };
    }
    if (typeof CSSTransition !== "undefined" && animation instanceof CSSTransition) {
      return { kind: "css-transition", name: `CSS transition of ${animation.transitionProperty}${where ? ` on ${where}` : ""}` };
    }
    const id = animation.id ? ` '${animation.id}'` : "";
    return { kind: "waapi", name: `Web Animation${id}${where ? ` on ${where}` : ""}` };
  }
  function clockSeconds(text) {
    const value = String(text || "").trim();
    let match = /^(\d+(?:\.\d+)?)(h|min|s|ms)?$/.exec(value);
    if (match) {
      const unit = { h: 3600, min: 60, s: 1, ms: 0.001 }[match[2] || "s"];
      return Number(match[1]) * unit;
    }
    match = /^(?:(\d+):)?(\d{1,2}):(\d{2}(?:\.\d+)?)$/.exec(value);
    if (match) return Number(match[1] || 0) * 3600 + Number(match[2]) * 60 + Number(match[3]);
    return NaN;
  }
  function smilEnd(element, start, found, unbounded) {
    const name = `SVG <${element.localName}>${element.id ? `#${element.id}` : ""}${element.getAttribute("attributeName") ? ` of ${element.getAttribute("attributeName")}` : ""}`;
    let begin;
    try { begin = element.getStartTime(); } catch (error) { return; } // no interval started by time
    const repeatCount = element.getAttribute("repeatCount");
    const repeatDur = element.getAttribute("repeatDur");
    if (repeatCount === "indefinite" || repeatDur === "indefinite") {
      unbounded.push({ kind: "smil", name: `${name} (repeatCount indefinite)` });
      return;
    }
    let simple = NaN;
    try { simple = element.getSimpleDuration(); } catch (error) { /* indefinite: a <set> */ }
    let active = Number.isFinite(simple) ? simple : 0;
    if (repeatCount !== null && Number.isFinite(Number(repeatCount))) active = active * Number(repeatCount);
    if (repeatDur !== null && Number.isFinite(clockSeconds(repeatDur))) {
      active = repeatCount !== null ? Math.min(active, clockSeconds(repeatDur)) : clockSeconds(repeatDur);
    }
    let end = begin + active;
    const endAttribute = clockSeconds(element.getAttribute("end"));
    if (Number.isFinite(endAttribute)) end = Math.min(end, endAttribute);
    found.push({ kind: "smil", name, end: start + end * 1000 });
  }
  function gsapEnds(found, unbounded) {
    const gsap = window.gsap;
    const global = gsap && gsap.globalTimeline;
    if (!global || typeof global.getChildren !== "function") return;
    const origin = now - global.time() * 1000;
    for (const child of global.getChildren(false, true, true)) {
      if (child.paused()) continue;
      const targets = typeof child.targets === "function" ? child.targets().filter((t) => t && t.tagName).slice(0, 1) : [];
      const kind = typeof child.getChildren === "function" ? "GSAP timeline" : "GSAP tween";
      const name = `${kind}${targets.length ? ` of ${describeElement(targets[0])}` : ""}`;
      const total = child.totalDuration();
      if ((typeof child.repeat === "function" && child.repeat() < 0) || !(total < 1e8)) {
        unbounded.push({ kind: "gsap", name: `${name} (repeat: -1)` });
        continue;
      }
      found.push({ kind: "gsap", name, end: origin + (child.startTime() + total / (child.timeScale() || 1)) * 1000 });
    }
  }
  async function lottieEnds(found, unbounded) {
    const lottie = window.lottie || window.bodymovin;
    if (!lottie || typeof lottie.getRegisteredAnimations !== "function") return;
    const items = lottie.getRegisteredAnimations();
    const deadline = realNow() + LENGTH_WAIT_MS;
    while (items.some((item) => !item.isLoaded) && realNow() < deadline) await new Promise((resolve) => realSetTimeout(resolve, 20));
    for (const item of items) {
      if (item.isPaused && !item.autoplay) continue;
      const where = item.wrapper && item.wrapper.tagName ? ` in ${describeElement(item.wrapper)}` : "";
      const name = `Lottie animation${item.name ? ` '${item.name}'` : ""}${where}`;
      if (item.loop === true) {
        unbounded.push({ kind: "lottie", name: `${name} (loop: true)` });
        continue;
      }
      if (!(item.totalFrames > 0) || !(item.frameRate > 0)) continue;
      const plays = typeof item.loop === "number" && item.loop > 0 ? item.loop + 1 : 1;
      const speed = Math.abs(item.playSpeed || 1);
      found.push({ kind: "lottie", name, end: now + ((item.totalFrames / item.frameRate) * plays * 1000) / speed });
    }
  }
  async function mediaEnds(found, unbounded) {
    noticeMutations(mediaObserver.takeRecords());
    const waits = [];
    for (const media of mediaStates.keys()) {
      const wait = whenMetadata(media);
      if (wait) waits.push(wait);
    }
    if (waits.length > 0) {
      await Promise.race([Promise.all(waits), new Promise((resolve) => realSetTimeout(resolve, LENGTH_WAIT_MS))]);
    }
    for (const [media, clock] of mediaStates) {
      if (!clock.playing || !(clock.rate > 0)) continue;
      const name = `${describeElement(media)} ${shortUrl(media.currentSrc || media.src)}`;
      if (media.loop) {
        unbounded.push({ kind: "media", name: `${name} (loop)` });
        continue;
      }
      const duration = media.duration;
      if (!Number.isFinite(duration) || !(duration > 0)) continue;
      found.push({ kind: "media", name, end: clock.startAt + (Math.max(0, duration - clock.anchor) / clock.rate) * 1000 });
    }
  }
  async function measureLength() {
    trackAnimations();
    const found = [];
    const unbounded = [];
    for (const [animation, model] of tracked) {
      // Its model (see "Web Animations under the page's control"): one that the page paused
      // or cancelled does not end on its own; else its time was 0 at `start` (virtual ms).
      const effect = animation.effect;
      const rate = model.rate;
      if (!effect || !(rate > 0) || model.start === null) continue;
      const start = model.origin + model.start;
      const label = animationLabel(animation);
      const end = effect.getComputedTiming().endTime;
      if (!Number.isFinite(end)) unbounded.push({ kind: label.kind, name: `${label.name} (iterations: infinite)` });
      else found.push({ kind: label.kind, name: label.name, end: start + end / rate });
    }
    for (const [svg, start] of svgTimelines) {
      for (const element of svg.querySelectorAll("animate, set, animateTransform, animateMotion, animateColor")) smilEnd(element, start, found, unbounded);
    }
    try { gsapEnds(found, unbounded); } catch (error) { /* not the GSAP we know */ }
    try { await lottieEnds(found, unbounded); } catch (error) { /* not the Lottie we know */ }
    await mediaEnds(found, unbounded);
    found.sort((a, b) => b.end - a.end);
    return {
      declared: { duration: declaredMeta("duration"), fps: declaredMeta("fps"), size: declaredMeta("size") },
      found: found.slice(0, LENGTH_LIST),
      count: found.length,
      unbounded: unbounded.slice(0, LENGTH_LIST),
      raf: rafQueue.size > 0,
    };
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
      replay,
      settled,
      presented,
      ready,
      pending,
      describeError,
      length: measureLength,
      info: () => ({
        usedClock: state.usedClock,
        usedRaf: state.usedRaf,
        rafPending: rafQueue.size,
        now,
        composition: window.helios ? compositionTiming(window.helios) : null,
      }),
      /** The seek profile so far ([workMs, settleMs] per seek; null when off); `on` restarts it. */
      profile: (on) => { const out = profile; profile = on ? [] : null; return out; },
    }),
    configurable: false,
  });
})();
