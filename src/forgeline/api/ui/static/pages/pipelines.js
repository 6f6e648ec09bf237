// Pipelines: the list (last status, a sparkline of recent durations), a pipeline's page (versions with a diff
// between two, parameters, the DAG) and its start form ("Create execution").
import { get, post, ApiError } from "../api.js";
import { h, badge, when, table, kv, show, seconds, enc } from "../dom.js";
import { drawDag } from "../dag.js";
import { sparkline } from "../chart.js";
import { lineDiff } from "../diff.js";
import { can } from "../session.js";

export async function renderList(view) {
  const pipelines = await get("/pipelines");
  const recent = await Promise.all(pipelines.map((p) => get("/executions", { pipeline: p.name, limit: 20 })));
  view.append(h("h1", {}, "Pipelines"), table(["Pipeline", "Version", "Executions", "Last status", "Recent durations", "Updated"],
    pipelines.map((p, i) => {
      const items = recent[i].items, last = items[0];
      const durations = items.filter((e) => e.started_at && e.ended_at).map((e) => seconds(e.started_at, e.ended_at)).reverse();
      return h("tr", { "data-pipeline": p.name },
        h("td", {}, h("a", { href: `#/pipelines/${enc(p.name)}` }, p.name)), h("td", {}, p.latest_version),
        h("td", {}, h("a", { href: `#/executions?pipeline=${enc(p.name)}` }, p.execution_count)),
        h("td", {}, last ? h("a", { href: `#/executions/${enc(last.id)}` }, badge(last.status)) : "—"),
        h("td", {}, sparkline(durations)), h("td", {}, when(p.updated_at)));
    })));
}

export async function renderPage(view, name, q) {
  const [latest, versions] = await Promise.all([get(`/pipelines/${enc(name)}`), get(`/pipelines/${enc(name)}/versions`)]);
  const params = latest.definition.Parameters || [];
  const diffBox = h("div", { id: "version-diff" });
  const pick = (id, selected) => h("select", { id }, versions.map((v) => h("option", { value: v.version, selected: v.version === selected }, `v${v.version} (${when(v.created_at)})`)));
  const a = pick("diff-a", versions.length > 1 ? versions[versions.length - 2].version : latest.version), b = pick("diff-b", latest.version);
  async function diff() {
    const [va, vb] = await Promise.all([a.value, b.value].map((v) => get(`/pipelines/${enc(name)}/versions/${v}`)));
    const lines = lineDiff(JSON.stringify(va.definition, null, 1), JSON.stringify(vb.definition, null, 1));
    const changed = lines.filter(([k]) => k !== " ").length;
    diffBox.replaceChildren(h("p", { class: "muted" }, changed ? `${changed} changed lines` : "The two versions are the same."),
      h("div", { class: "diff" }, lines.filter(([k], i) => k !== " " || lines.slice(Math.max(0, i - 2), i + 3).some(([o]) => o !== " "))
        .map(([k, text]) => h("span", { class: k === "+" ? "add" : k === "-" ? "del" : "" }, `${k} ${text}\n`))));
  }
  view.append(h("h1", {}, "Pipeline ", name),
    h("div", { class: "actions" }, can("operator") ? h("a", { class: "button", href: `#/pipelines/${enc(name)}/start`, id: "create-execution" }, "Create execution") : null,
      h("a", { href: `#/executions?pipeline=${enc(name)}` }, "Executions")),
    h("div", { class: "grid" },
      h("section", {}, h("h2", {}, `Graph (v${latest.version})`), h("div", { class: "dag" }, drawDag(latest.definition, null))),
      h("section", {}, h("h2", {}, "Parameters"), table(["Name", "Type", "Default", "Allowed"], params.map((p) =>
        h("tr", {}, h("td", {}, p.Name), h("td", {}, p.Type), h("td", {}, show(p.DefaultValue)), h("td", {}, p.EnumValues ? p.EnumValues.join(", ") : "any")))))),
    h("h2", {}, "Versions"), table(["Version", "Created", "Digest", "Code"], versions.map((v) =>
      h("tr", {}, h("td", {}, v.version), h("td", {}, when(v.created_at)), h("td", {}, h("code", {}, (v.digest || "").slice(0, 12))), h("td", {}, h("code", {}, (v.code_snapshot || "—").slice(0, 16)))))),
    h("div", { class: "row" }, h("label", {}, "Compare ", a), h("label", {}, "with ", b), h("button", { type: "button", onclick: diff }, "Show diff")), diffBox);
  if (versions.length > 1) await diff();
}

function input(p) {
  const id = `param-${p.Name}`, value = p.DefaultValue ?? "";
  if (p.EnumValues) return h("select", { id, name: p.Name }, p.EnumValues.map((v) => h("option", { value: v, selected: v === value }, v)));
  if (p.Type === "Boolean") return h("select", { id, name: p.Name }, ["true", "false"].map((v) => h("option", { value: v, selected: String(value) === v }, v)));
  if (p.Type === "Integer") return h("input", { id, name: p.Name, type: "number", step: 1, value });
  if (p.Type === "Float") return h("input", { id, name: p.Name, type: "number", step: "any", value });
  return h("input", { id, name: p.Name, type: "text", value, size: 40 });
}

export async function renderStart(view, name) {
  const latest = await get(`/pipelines/${enc(name)}`);
  const params = latest.definition.Parameters || [];
  const general = h("p", { class: "error", role: "alert", id: "form-error" });
  const fields = params.map((p) => h("div", { class: "field" },
    h("label", { for: `param-${p.Name}` }, `${p.Name} `, h("span", { class: "muted" }, `(${p.Type})`)), input(p),
    h("span", { class: "field-error", id: `error-${p.Name}`, role: "alert" })));
  const form = h("form", { class: "card", novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    for (const e of form.querySelectorAll(".field-error")) e.textContent = "";
    general.textContent = "";
    const parameters = {};
    for (const p of params) parameters[p.Name] = form.elements[p.Name].value;
    try {
      const started = await post("/executions", { pipeline: name, parameters, version: latest.version });
      location.hash = `#/executions/${enc(started.id)}`;
    } catch (err) {
      const field = err instanceof ApiError && params.find((p) => err.message.includes(`'${p.Name}'`));
      (field ? form.querySelector(`#error-${CSS.escape(field.Name)}`) : general).textContent = err.message;
    }
  } }, fields, general, h("div", { class: "actions" }, h("button", { type: "submit", id: "start-execution" }, "Start")));
  view.append(h("h1", {}, `Create execution of ${name} v${latest.version}`), kv({ Pipeline: h("a", { href: `#/pipelines/${enc(name)}` }, name) }), form);
}
