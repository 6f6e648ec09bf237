// Schedules, triggers, alarms (next fire, last event, last delivery; pause/resume for admins) and endpoints.
import { get, post } from "../api.js";
import { h, badge, when, table, show, enc } from "../dom.js";
import { can } from "../session.js";

const COLUMNS = {
  schedules: [["Name", (r) => r.name], ["Pipeline", (r) => r.pipeline_name], ["Cron", (r) => `${r.cron} (${r.timezone})`],
    ["Next fire", (r) => when(r.next_fire_at || r.next_due_at)], ["Last fire", (r) => when(r.last_fire_at || r.last_due_at)], ["State", (r) => (r.paused ? "paused" : "active")]],
  triggers: [["Name", (r) => r.name], ["Pipeline", (r) => r.pipeline_name], ["Watches", (r) => `${r.watch} ${r.pattern || ""}`],
    ["Last event", (r) => when(r.last_object_at || r.last_seen_at || r.last_event_at)], ["State", (r) => (r.paused ? "paused" : "active")]],
  alarms: [["Name", (r) => r.name], ["On", (r) => (r.events || r.on || []).join(", ")], ["To", (r) => (r.targets || r.to || []).join(", ")],
    ["Last delivery", (r) => r.last_delivery ? `${r.last_delivery.status} ${when(r.last_delivery.created_at || r.last_delivery.updated_at)}` : "—"], ["State", (r) => (r.paused ? "paused" : "active")]],
  endpoints: [["Name", (r) => r.name], ["Status", (r) => badge(r.status || "—")],
    ["Variants", (r) => (r.variants || []).map((v) => `${v.name || v.variant_name} (weight ${show(v.weight ?? v.initial_weight)})`).join(", ") || "—"],
    ["Updated", (r) => when(r.updated_at)]],
};

export async function render(view, kind) {
  const rows = await get(`/${kind}`);
  const items = Array.isArray(rows) ? rows : rows.items || [];
  const msg = h("p", { class: "error", role: "alert" });
  const toggle = (r) => h("button", { type: "button", class: "secondary", "data-action": r.paused ? "resume" : "pause", onclick: async () => {
    try { await post(`/${kind}/${enc(r.name)}/${r.paused ? "resume" : "pause"}`); location.hash = `#/${kind}?t=${Date.now()}`; }
    catch (err) { msg.textContent = err.message; }
  } }, r.paused ? "Resume" : "Pause");
  const columns = COLUMNS[kind], actions = kind !== "endpoints" && can("admin");
  const extra = kind === "alarms" ? await get("/alarms/history", { limit: 20 }).catch(() => []) : null;
  view.append(h("h1", {}, kind[0].toUpperCase() + kind.slice(1)), msg,
    table([...columns.map(([t]) => t), ...(actions ? [""] : [])], items.map((r) => h("tr", { "data-name": r.name },
      columns.map(([, f]) => { const v = f(r); return h("td", {}, v instanceof Node ? v : show(v)); }), actions ? h("td", {}, toggle(r)) : null)), { id: `${kind}-table` }),
    extra ? [h("h2", {}, "Recent deliveries"), table(["When", "Alarm", "Event", "Target", "Status"], (Array.isArray(extra) ? extra : extra.items || []).map((d) =>
      h("tr", {}, h("td", {}, when(d.created_at || d.updated_at)), h("td", {}, show(d.alarm || d.alarm_name)), h("td", {}, show(d.kind || d.event_kind)), h("td", {}, show(d.target)), h("td", {}, show(d.status)))))] : null);
}
