// A stand-in for Helios core, laid out the way Vite's repo-wide build lays out a Helios project:
// the shared bundle in /assets, the pages in /examples/NAME/. Like Helios core, it counts frames
// at its own fps, takes them from seek(frame), and binds to document.timeline by polling it
// from requestAnimationFrame.
export class Helios {
  constructor({ fps, duration }) {
    this.fps = { value: fps };
    this.duration = { value: duration };
    this.currentFrame = { value: 0 };
    this.listeners = [];
  }
  subscribe(listener) {
    this.listeners.push(listener);
    listener(this.currentFrame.value);
  }
  seek(frame) {
    this.currentFrame.value = frame;
    for (const listener of this.listeners) listener(frame);
  }
  getState() {
    return { fps: this.fps.value, duration: this.duration.value, currentFrame: this.currentFrame.value };
  }
  bindToDocumentTimeline() {
    const poll = () => {
      const time = document.timeline.currentTime;
      if (typeof time === "number") {
        const frame = (time / 1000) * this.fps.value;
        if (frame !== this.currentFrame.value) this.seek(frame);
      }
      requestAnimationFrame(poll);
    };
    requestAnimationFrame(poll);
  }
}
