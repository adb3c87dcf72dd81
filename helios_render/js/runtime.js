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
  function mediaTarget(media, t) {
    return mediaClock(media, mediaState(media), t).time;
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
      if (!realPaused.get.call(media)) realPause.call(media);
      const target = mediaTarget(media, t);
      if (media.localName === "audio") {
        const wait = whenMetadata(media);
        if (wait) waits.push(wait);
        continue;
      }
      if (Math.abs(realTime.get.call(media) - target) > 1e-6 || media.readyState < 2) {
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
          if (media.readyState >= 1) realTime.set.call(media, target);
          else media.addEventListener("loadedmetadata", () => { realTime.set.call(media, mediaTarget(media, t)); }, { once: true });
          if (media.readyState >= 2 && !media.seeking) done();
        }));
      }
    }
    waits.push(...detachedMediaWaits());
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
        waits.push(image.decode().catch(() => undefined));
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

  async function seek(frame, t) {
    currentFrame = frame;
    errors.length = 0;
    if (t < now) throw new Error(`helios: cannot seek back in time (from ${now} ms to ${t} ms)`);
    trackAnimations();
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
    await Promise.all(waits);
    if (errors.length > 0) throw errors[0];
    return mediaRecords(t); // null when nothing is heard: the common case stays cheap
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
      if (media.seeking || media.readyState < (media.localName === "audio" ? 1 : 2)) labels.push(`media ${media.currentSrc || media.src}`);
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
    }),
    configurable: false,
  });
})();
