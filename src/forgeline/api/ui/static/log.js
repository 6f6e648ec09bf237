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
  let next = size;                         // byte offset the live tail follows from
  // A page's edges are moved onto UTF-8 character boundaries by the server, which says where it really starts
  // and where the next page starts: pages joined on those offsets never split a character.
  async function fetchRange(offset, length) {
    const response = await call(path, { params: { attempt, offset, length }, raw: true });
    const start = Number(response.headers.get("X-Forgeline-Log-Offset") ?? offset);
    const end = Number(response.headers.get("X-Forgeline-Log-Next-Offset") ?? offset + length);
    return { start, end, text: await response.text() };
  }
  const atBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 30;
  function describe() {
    info.textContent = `attempt ${attempt || "—"} · ${first ? `showing from byte ${first} of ` : ""}${size} bytes`;
    earlier.hidden = first === 0;
  }
  function append(text) {
    const follow = atBottom();
    pre.append(text);
    if (pre.textContent.length > KEEP) {  // drop the oldest text so a long log never freezes the page
      let cut = pre.textContent.length - KEEP;
      if (/[\uDC00-\uDFFF]/.test(pre.textContent[cut])) cut += 1;  // never half of a surrogate pair
      first += new TextEncoder().encode(pre.textContent.slice(0, cut)).length;
      pre.textContent = pre.textContent.slice(cut);
    }
    if (follow) pre.scrollTop = pre.scrollHeight;
  }
  if (size) {
    const tail = await fetchRange(first, size - first);
    [first, next] = [tail.start, tail.end];
    pre.textContent = tail.text;
  } else pre.textContent = "";
  describe();
  earlier.onclick = async () => {
    const from = Math.max(0, first - PAGE), keep = pre.scrollHeight - pre.scrollTop;
    const page = await fetchRange(from, first - from);
    first = page.start;
    pre.textContent = page.text + pre.textContent;
    if (pre.textContent.length > KEEP) pre.textContent = pre.textContent.slice(0, KEEP);
    pre.scrollTop = pre.scrollHeight - keep;
    describe();
  };
  requestAnimationFrame(() => { pre.scrollTop = pre.scrollHeight; });
  let close = () => {};
  if (running && attempt) {
    close = stream(`${path}?follow=true&attempt=${attempt}&offset=${next}`, {
      log: (ev) => { size = Number(ev.lastEventId.split(":")[1] || size); append(ev.data); describe(); },
      end: (ev) => { append(`\n[step ${ev.data}]\n`); close(); },
    });
  }
  return { element: box, close: () => close() };
}
