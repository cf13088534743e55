// One workspace: a live overview (SSE) and tabs for terminals, history, files, changes,
// snapshots and services. Each tab is its own module; this one routes between them.
import { follow, h, labelText, sizeText, ttlLeft, wsPath } from "./dom.js";
import { changesTab } from "./changes.js";
import { filesTab, historyTab } from "./browse.js";
import { networkTab, servicesTab, snapshotsTab } from "./manage.js";
import { terminalsTab } from "./terminals.js";

const TABS = ["overview", "terminal", "history", "files", "changes", "snapshots", "services", "network"];

// Usage beside the limits, as `workspace stats` reports them; "?" where this backend cannot know.
function usageRows(stats) {
  const known = (value, show) => (value === null || value === undefined ? "?" : show(value));
  const limit = (value, show) => (value === null || value === undefined ? "no limit" : show(value));
  const limits = stats.limits || {};
  return [
    ["CPU time", `${known(stats.cpu_seconds, (s) => `${s.toFixed(1)} s`)} (vCPUs: ${limit(limits.vcpus, String)})`],
    ["memory", `${known(stats.memory_bytes, sizeText)} of ${limit(limits.memory_bytes, sizeText)} (peak ${known(stats.memory_peak_bytes, sizeText)})`],
    ["processes", `${known(stats.pids, String)} of ${limit(limits.pids, String)}`],
    ["disk", `${known(stats.workspace_disk_bytes, sizeText)} in /workspace, ${known(stats.disk_bytes, sizeText)} in all`],
    ["usage from", stats.source],
  ];
}

function counts(perState) {
  const parts = Object.entries(perState || {}).map(([state, n]) => `${n} ${state}`);
  return parts.length ? parts.join(", ") : "none";
}

function overviewTab(ctx) {
  const box = h("div", { class: "overview" });
  function render(state) {
    if (!state) return;
    const info = state.info;
    const rows = [
      ["state", h("span", { class: `badge ${info.state}`, "data-testid": "ws-state" }, info.state)],
      ["health", info.health || "ok"],
      ["backend", `${info.backend} (${info.isolated ? "isolated" : "NOT isolated: host processes"})`],
      ["env", info.env],
      ["created", info.created_at],
      ["TTL left", ttlLeft(info.expires_at)],
      ["last start", info.last_start
        ? `${info.last_start.at}: ${info.last_start.services.length} services back, ${info.last_start.services_failed.length} did not come back`
        : "–"],
      ["labels", labelText(info.labels) || "–"],
      ["execs", String(info.exec_count)],
      ["services", counts(info.services)],
      ["shells", counts(info.shells)],
      ["network", info.network ? info.network.policy : "off"],
      ["protections", (info.protections || []).map((p) => `${p.active ? "✔" : "✘"} ${p.name}`).join("  ") || "–"],
    ];
    if (state.stats) rows.push(...usageRows(state.stats));
    box.replaceChildren(h("table", { class: "kv" }, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))));
  }
  return { el: box, update: render };
}

export function workspaceView(main, id, firstTab) {
  const ctx = { id, base: wsPath(id), state: null };
  const title = h("h1", {}, id);
  const nav = h("nav", { class: "tabs" });
  const panes = h("div", { class: "panes" });
  const tabs = {
    overview: overviewTab(ctx),
    terminal: terminalsTab(ctx),
    history: historyTab(ctx),
    files: filesTab(ctx),
    changes: changesTab(ctx),
    snapshots: snapshotsTab(ctx),
    services: servicesTab(ctx),
    network: networkTab(ctx),
  };
  for (const name of TABS) panes.append(h("section", { class: "pane", "data-tab": name, hidden: true }, tabs[name].el));
  nav.replaceChildren(...TABS.map((name) =>
    h("a", { href: `#/ws/${encodeURIComponent(id)}/${name}`, "data-tab": name }, name)));
  main.replaceChildren(title, nav, panes);
  document.getElementById("crumbs").replaceChildren(h("a", { href: "#/" }, "workspaces"), " / ", id.slice(0, 12));

  const source = follow(`${ctx.base}/events`, "workspace", (state) => {
    ctx.state = state;
    title.textContent = state.info.name ? `${state.info.name} (${id.slice(0, 12)})` : id;
    for (const tab of Object.values(tabs)) tab.update?.(state);
  });

  function show(name) {
    const tab = TABS.includes(name) ? name : "overview";
    for (const pane of panes.children) pane.hidden = pane.dataset.tab !== tab;
    for (const link of nav.children) link.classList.toggle("active", link.dataset.tab === tab);
    tabs[tab].shown?.();
  }
  show(firstTab);
  return {
    id,
    show,
    close() {
      source.close();
      for (const tab of Object.values(tabs)) tab.close?.();
    },
  };
}
