// The workspaces list: live (SSE), filtered by state and label, with create and delete.
import { api, confirmDialog, follow, h, labelText, showError, ttlLeft, wsPath } from "./dom.js";

const STATES = ["", "running", "stopped", "unhealthy", "creating", "failed", "deleting", "corrupt"];

export function listView(main) {
  let rows = [];
  const filters = { state: "", label: "" };
  const message = h("div", { class: "message" });
  const body = h("tbody", { id: "workspace-rows" });
  const count = h("span", { class: "count" });
  const envPicker = h("select", { name: "env", "data-testid": "create-env" });
  const nameInput = h("input", { name: "name", placeholder: "name (optional)", "data-testid": "create-name" });

  const stateFilter = h("select", { "data-testid": "filter-state", onchange: (e) => { filters.state = e.target.value; render(); } },
    STATES.map((s) => h("option", { value: s }, s || "any state")));
  const labelFilter = h("input", { placeholder: "label k=v", "data-testid": "filter-label",
    oninput: (e) => { filters.label = e.target.value.trim(); render(); } });

  const create = h("form", { class: "create", onsubmit: async (event) => {
    event.preventDefault();
    const button = create.querySelector("button");
    button.disabled = true;
    message.replaceChildren(h("div", { class: "note" }, `creating a ${envPicker.value} workspace…`));
    try {
      const made = await api("/api/workspaces", { method: "POST", body: { env: envPicker.value, name: nameInput.value || null } });
      message.replaceChildren(h("div", { class: "note" }, `created ${made.name || made.id}`));
      nameInput.value = "";
    } catch (error) { showError(message, error); }
    button.disabled = false;
  } }, "New workspace: ", envPicker, nameInput, h("button", { type: "submit", "data-testid": "create" }, "Create"));

  function keeps(row) {
    if (filters.state && row.state !== filters.state) return false;
    if (!filters.label) return true;
    const [key, value] = filters.label.split("=");
    if (!(key in (row.labels || {}))) return false;
    return value === undefined || row.labels[key] === value;
  }

  async function remove(row) {
    if (!(await confirmDialog(`Delete workspace ${row.name || row.id}? Its files, shells and services go with it.`))) return;
    try { await api(wsPath(row.id), { method: "DELETE" }); } catch (error) { showError(message, error); }
  }

  function render() {
    const shown = rows.filter(keeps);
    count.textContent = `${shown.length} of ${rows.length}`;
    body.replaceChildren(...shown.map((row) => h("tr", { "data-id": row.id, class: `state-${row.state}` },
      h("td", {}, h("a", { href: `#/ws/${encodeURIComponent(row.id)}` }, row.id.slice(0, 12))),
      h("td", {}, row.name || ""),
      h("td", {}, h("span", { class: `badge ${row.state}` }, row.state), row.health && row.health !== "ok" ? h("div", { class: "health" }, row.health) : null),
      h("td", {}, row.backend, " ", h("span", { class: row.isolated ? "iso" : "noiso" }, row.isolated ? "isolated" : "NOT isolated")),
      h("td", {}, row.env),
      h("td", { class: "labels" }, labelText(row.labels)),
      h("td", { class: "parent" }, row.parent ? h("a", { href: `#/ws/${encodeURIComponent(row.parent)}` }, row.parent.slice(0, 12)) : ""),
      h("td", { class: "ttl", "data-expires": row.expires_at || "" }, ttlLeft(row.expires_at)),
      h("td", {}, h("button", { class: "danger small", "data-testid": "delete", onclick: () => remove(row) }, "Delete")))));
  }

  main.replaceChildren(
    h("section", { class: "toolbar" }, create),
    message,
    h("section", { class: "toolbar" }, "Filter: ", stateFilter, labelFilter, count),
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["id", "name", "state", "backend", "env", "labels", "forked from", "TTL left", ""].map((t) => h("th", {}, t)))),
      body));

  api("/api/envs").then((envs) => {
    envPicker.replaceChildren(...envs.map((e) => h("option", { value: e.name }, e.cached ? e.name : `${e.name} (not cached)`)));
  }).catch((error) => showError(message, error));
  const source = follow("/api/events/workspaces", "workspaces", (value) => { rows = value; render(); });
  const ticker = setInterval(() => {
    for (const cell of body.querySelectorAll("td.ttl")) cell.textContent = ttlLeft(cell.dataset.expires);
  }, 1000);
  document.getElementById("crumbs").replaceChildren("workspaces");
  return { id: null, show() {}, close() { source.close(); clearInterval(ticker); } };
}
