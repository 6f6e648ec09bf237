// Endpoints: each endpoint's status and variants (weights, models, workers, queue) with the last minute's traffic
// — requests per second, p50/p99 latency, errors — as the running `forgeline serve` counts it (the API's `live`).
// The figures are asked for again every few seconds and updated in place: no reload.
import { get } from "../api.js";
import { h, badge, when, table, show } from "../dom.js";

const REFRESH_MS = 2000;

const rate = (t) => (t ? `${t.requests_per_second.toFixed(2)}/s` : "—");
const ms = (v) => (v === null || v === undefined ? "—" : `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`);
const figure = (name, text) => h("td", { "data-figure": name }, text);

function traffic(t) {
  return [figure("rate", rate(t)), figure("p50", ms(t && t.p50_ms)), figure("p99", ms(t && t.p99_ms)),
    figure("errors", t ? `${t.errors} of ${t.requests}` : "—")];
}

function card(endpoint) {
  const live = endpoint.live || {}, served = !live.error;
  const configured = (endpoint.config || {}).variants || [];
  // What serve runs when it answered, else the configuration (without figures)
  const variants = served && live.variants && live.variants.length ? live.variants
    : configured.map((v) => ({ name: v.name, weight: v.weight, model: (v.models || []).join(", ") }));
  const total = variants.reduce((sum, v) => sum + Number(v.weight || 0), 0) || 1;
  return h("section", { class: "card", "data-endpoint": endpoint.name },
    h("h2", {}, endpoint.name, " ", badge(served ? live.status : endpoint.status)),
    h("p", { class: "muted" }, `revision ${endpoint.revision}`, served && live.serving_revision ? ` (serving ${live.serving_revision})` : "",
      ` · updated ${when(endpoint.updated_at)}`),
    endpoint.status_message || live.problem ? h("p", { class: "error" }, live.problem || endpoint.status_message) : null,
    served ? h("p", { class: "muted" }, `Last ${live.traffic.window_seconds} s, all variants:`) : h("p", { class: "muted", "data-live-error": "" }, live.error),
    table(["Variant", "Weight", "Models", "Workers", "Queue", "Requests/s", "p50", "p99", "Errors"], [
      ...variants.map((v) => h("tr", { "data-variant": v.name },
        h("td", {}, v.name), h("td", { "data-figure": "weight" }, `${show(v.weight)} (${Math.round((100 * Number(v.weight || 0)) / total)} %)`),
        h("td", {}, show(v.model)), h("td", {}, show(v.workers)), h("td", {}, show(v.queue)), ...traffic(v.traffic))),
      ...(served ? [h("tr", { "data-variant": "", class: "total" }, h("td", {}, "All"), h("td", {}), h("td", {}), h("td", {}), h("td", {}),
        ...traffic(live.traffic))] : []),
    ]));
}

export async function render(view) {
  const list = h("div", { id: "endpoints" }), message = h("p", { class: "error", role: "alert" });
  const stamp = h("p", { class: "muted", "aria-live": "polite" });
  const paint = (endpoints) => {
    list.replaceChildren(...(endpoints.length ? endpoints.map(card) : [h("p", { class: "muted" }, "No endpoints yet.")]));
    stamp.textContent = `Live: updated ${new Date().toLocaleTimeString()}`;
  };
  paint(await get("/endpoints"));
  view.append(h("h1", {}, "Endpoints"), stamp, message, list);
  let timer = null, stopped = false;
  const tick = async () => {
    try { paint(await get("/endpoints")); message.textContent = ""; } catch (err) { message.textContent = err.message; }
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  };
  timer = setTimeout(tick, REFRESH_MS);
  return () => { stopped = true; clearTimeout(timer); };
}
