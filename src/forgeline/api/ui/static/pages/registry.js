// The model registry: groups, a group's versions with status and metrics, two versions compared, a version's
// lineage and evaluation report, approve/reject with a note (approvers), and the approval event history.
import { get, post } from "../api.js";
import { h, badge, when, table, kv, show, enc } from "../dom.js";
import { can } from "../session.js";

export async function renderGroups(view) {
  const groups = await get("/models/groups");
  view.append(h("h1", {}, "Model registry"), table(["Group", "Versions", "Latest", "Latest approved", "Updated"],
    groups.map((g) => h("tr", { "data-group": g.name }, h("td", {}, h("a", { href: `#/registry/${enc(g.name)}` }, g.name)),
      h("td", {}, g.version_count), h("td", {}, g.latest_version), h("td", {}, show(g.latest_approved_version)), h("td", {}, when(g.updated_at))))));
}

const flat = (m, prefix = "") => (m && typeof m === "object" && !Array.isArray(m))
  ? Object.entries(m).flatMap(([k, v]) => flat(v, prefix ? `${prefix}.${k}` : k)) : (m === null || m === undefined ? [] : [[prefix || "value", m]]);

async function reportLink(lineage) {
  const id = lineage && lineage.execution_id;
  if (!id) return "—";
  const steps = await get(`/executions/${enc(id)}/steps`).catch(() => []);
  const report = steps.find((s) => s.kind === "EvaluationReport");
  return h("span", {}, h("a", { href: `#/executions/${enc(id)}`, "data-lineage": "execution" }, id),
    report ? [" · ", h("a", { href: `#/executions/${enc(id)}?step=${enc(report.name)}`, id: "evaluation-report" }, "evaluation report")] : "");
}

export async function renderGroup(view, group, q) {
  const versions = await get(`/models/groups/${enc(group)}/versions`);
  const chosen = Number(q.get("version") || (versions[0] && versions[0].version));
  const detail = h("section", { id: "version-detail" }), compareBox = h("div", { id: "compare" });
  const pick = (id, v) => h("select", { id }, versions.map((x) => h("option", { value: x.version, selected: x.version === v }, `v${x.version}`)));
  const a = pick("compare-a", versions[1] ? versions[1].version : chosen), b = pick("compare-b", chosen);
  async function compare() {
    const c = await get(`/models/groups/${enc(group)}/compare`, { a: a.value, b: b.value });
    compareBox.replaceChildren(table(["Metric", `v${c.a}`, `v${c.b}`, "Difference"], c.metrics.map((m) =>
      h("tr", {}, h("td", {}, m.name), h("td", {}, show(m.a)), h("td", {}, show(m.b)), h("td", { "data-difference": "" }, typeof m.difference === "number" ? String(Number(m.difference.toPrecision(6))) : show(m.difference))))));
  }
  async function showVersion(version) {
    const d = await get(`/models/groups/${enc(group)}/versions/${version}`);
    const p = d.package, note = h("textarea", { id: "decision-note", rows: 2, cols: 40, "aria-label": "note" }), msg = h("p", { class: "error", role: "alert" });
    const decide = (verb) => h("button", { type: "button", "data-action": verb, class: verb === "reject" ? "secondary" : "", onclick: async () => {
      msg.textContent = "";
      try { await post(`/models/groups/${enc(group)}/versions/${version}/${verb}`, { note: note.value || null }); location.hash = `#/registry/${enc(group)}?version=${version}&t=${Date.now()}`; }
      catch (err) { msg.textContent = err.message; }
    } }, verb === "approve" ? "Approve" : "Reject");
    detail.replaceChildren(h("h2", {}, `Version ${version} `, badge(p.approval_status)),
      kv({ Model: h("code", {}, p.model_data), Description: p.description, Created: when(p.created_at), "Lineage": await reportLink(p.lineage) }),
      h("h3", {}, "Metrics"), table(["Metric", "Value"], flat(p.metrics).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, show(v))))),
      can("approver") ? h("div", { class: "card", id: "decision" }, h("label", { for: "decision-note" }, "Note"), note, h("div", { class: "actions" }, decide("approve"), decide("reject")), msg) : "",
      h("h3", {}, "History"), table(["When", "From", "To", "By", "Note"], d.history.map((e) =>
        h("tr", { "data-event": e.seq }, h("td", {}, when(e.created_at)), h("td", {}, show(e.from_status)), h("td", {}, badge(e.to_status)), h("td", {}, e.actor), h("td", {}, show(e.note)))), { id: "history" }));
  }
  view.append(h("h1", {}, "Model group ", group),
    table(["Version", "Status", "Metrics", "Created"], versions.map((v) => h("tr", { "data-version": v.version },
      h("td", {}, h("a", { href: `#/registry/${enc(group)}?version=${v.version}` }, `v${v.version}`)), h("td", {}, badge(v.approval_status)),
      h("td", {}, flat(v.metrics).slice(0, 4).map(([k, x]) => `${k}=${show(x)}`).join(", ")), h("td", {}, when(v.created_at))))),
    h("div", { class: "row" }, h("label", {}, "Compare ", a), h("label", {}, "with ", b), h("button", { type: "button", onclick: compare }, "Compare")), compareBox, detail);
  if (chosen) await showVersion(chosen);
}
