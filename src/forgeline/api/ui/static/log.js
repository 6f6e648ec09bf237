// A step's log: the tail first, earlier pages on demand (byte ranges, never the whole file), then followed live
// over Server-Sent Events while the step runs. The page keeps at most KEEP bytes of text in the DOM.
import { call, stream } from "./api.js";
import { h } from "./dom.js";

const PAGE = 64 * 1024;
const KEEP = 2 * 1024 * 1024;

export async function logViewer(path, running) {
  const pre = h("pre", { class: "log", tabindex: 0, "aria-label": "step log", "aria-live": "off" });
  const info = h("span", { class: "muted" });
  const earlier = h("button", { type: "button", class: "secondary" }, "Load earlier");
  const box = h("div", { class: "log-viewer" }, h("div", { class: "actions" }, earlier, info), pre);
  const head = await call(path, { params: { length: 0 }, raw: true });
  let size = Number(head.headers.get("X-Forgeline-Log-Size") || 0);
  const attempt = head.headers.get("X-Forgeline-Attempt");
  let first = Math.max(0, size - PAGE);   // byte offset of the first byte shown
  const fetchRange = async (offset, length) => (await call(path, { params: { attempt, offset, length }, raw: true })).text();
  const atBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 30;
  function describe() {
    info.textContent = `attempt ${attempt || "—"} · ${first ? `showing from byte ${first} of ` : ""}${size} bytes`;
    earlier.hidden = first === 0;
  }
  function append(text) {
    const follow = atBottom();
    pre.append(text);
    if (pre.textContent.length > KEEP) {  // drop the oldest text so a long log never freezes the page
      const cut = pre.textContent.length - KEEP;
      first += new TextEncoder().encode(pre.textContent.slice(0, cut)).length;
      pre.textContent = pre.textContent.slice(cut);
    }
    if (follow) pre.scrollTop = pre.scrollHeight;
  }
  pre.textContent = size ? await fetchRange(first, size - first) : "";
  describe();
  earlier.onclick = async () => {
    const from = Math.max(0, first - PAGE), keep = pre.scrollHeight - pre.scrollTop;
    const text = await fetchRange(from, first - from);
    first = from;
    pre.textContent = text + pre.textContent;
    if (pre.textContent.length > KEEP) pre.textContent = pre.textContent.slice(0, KEEP);
    pre.scrollTop = pre.scrollHeight - keep;
    describe();
  };
  requestAnimationFrame(() => { pre.scrollTop = pre.scrollHeight; });
  let close = () => {};
  if (running && attempt) {
    close = stream(`${path}?follow=true&attempt=${attempt}&offset=${size}`, {
      log: (ev) => { size = Number(ev.lastEventId.split(":")[1] || size); append(ev.data); describe(); },
      end: (ev) => { append(`\n[step ${ev.data}]\n`); close(); },
    });
  }
  return { element: box, close: () => close() };
}
