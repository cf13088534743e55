// One workspace: a live overview (SSE) and tabs for terminals, history, files, changes,
// snapshots and services. Each tab is its own module; this one routes between them.
import { follow, h, labelText, ttlLeft, wsPath } from "./dom.js";
import { changesTab } from "./changes.js";
import { filesTab, historyTab } from "./browse.js";
import { servicesTab, snapshotsTab } from "./manage.js";
import { terminalsTab } from "./terminals.js";

const TABS = ["overview", "terminal", "history", "files", "changes", "snapshots", "services"];

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
      ["labels", labelText(info.labels) || "–"],
      ["execs", String(info.exec_count)],
      ["services", JSON.stringify(info.services || {})],
      ["shells", JSON.stringify(info.shells || {})],
      ["network", info.network ? info.network.policy : "off"],
      ["protections", (info.protections || []).map((p) => `${p.active ? "✔" : "✘"} ${p.name}`).join("  ") || "–"],
    ];
    if (info.stats) rows.push(["stats", JSON.stringify(info.stats)]);
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
