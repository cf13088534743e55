// Snapshots (create; reset to one, or to the baseline, after a confirmation) and services
// (state, readiness, ports, a live log view, stop).
import { api, confirmDialog, h, showError, sizeText } from "./dom.js";

export function snapshotsTab(ctx) {
  const list = h("tbody");
  const message = h("div", { class: "message" });
  const name = h("input", { placeholder: "snapshot name", "data-testid": "snapshot-name" });

  async function reset(snapshot) {
    if (!(await confirmDialog(`Reset /workspace to ${snapshot}? Changes since then are lost; shells and services stop.`))) return;
    try {
      const result = await api(`${ctx.base}/reset`, { method: "POST", body: { snapshot } });
      message.replaceChildren(h("div", { class: "note", "data-testid": "reset-result" },
        `reset to ${result.snapshot}: ${result.restored} restored, ${result.removed} removed`));
    } catch (error) { showError(message, error); }
  }

  const form = h("form", { class: "toolbar", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api(`${ctx.base}/snapshots`, { method: "POST", body: { name: name.value } });
      message.replaceChildren(h("div", { class: "note" }, `snapshot ${name.value} made`));
      name.value = "";
    } catch (error) { showError(message, error); }
  } }, name, h("button", { type: "submit", "data-testid": "snapshot-create" }, "Create snapshot"), " ",
  h("button", { type: "button", class: "danger", "data-testid": "reset-baseline", onclick: () => reset("baseline") }, "Reset to baseline"));

  return {
    el: h("div", {}, form, message, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["name", "created", "files", "size", ""].map((t) => h("th", {}, t)))), list)),
    update(state) {
      list.replaceChildren(...state.snapshots.map((s) => h("tr", { "data-snapshot": s.name },
        h("td", {}, s.name), h("td", {}, s.created_at), h("td", {}, String(s.files)), h("td", {}, sizeText(s.size_bytes)),
        h("td", {}, h("button", { class: "danger small", "data-testid": "reset", onclick: () => reset(s.name) }, "Reset to this")))));
    },
  };
}

function readiness(service) {
  const probe = service.probe || {};
  const kind = ["file", "tcp", "http", "command"].find((k) => probe[k]);
  const what = kind ? `${kind} ${probe[kind]}` : "no probe";
  return service.ready_at ? `${what}: ready at ${service.ready_at}` : what;
}

export function servicesTab(ctx) {
  const list = h("tbody");
  const logTitle = h("h3");
  const log = h("pre", { class: "log", "data-testid": "service-log" });
  const message = h("div", { class: "message" });
  let following = null;

  function watch(name) {
    following?.close();
    log.textContent = "";
    logTitle.textContent = `log of ${name} (live)`;
    following = new EventSource(`${ctx.base}/services/${encodeURIComponent(name)}/log`);
    following.addEventListener("log", (event) => {
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(JSON.parse(event.data));
      if (atBottom) log.scrollTop = log.scrollHeight;
    });
    following.addEventListener("end", () => { logTitle.textContent = `log of ${name} (ended)`; following.close(); });
    following.addEventListener("failed", (event) => {
      logTitle.textContent = `log of ${name} (stopped: ${JSON.parse(event.data).message})`;
      following.close();
    });
  }

  async function stop(name) {
    try { await api(`${ctx.base}/services/${encodeURIComponent(name)}/stop`, { method: "POST" }); }
    catch (error) { showError(message, error); }
  }

  return {
    el: h("div", {}, message, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["name", "state", "readiness", "ports", "restarts", "command", ""].map((t) => h("th", {}, t)))), list),
      logTitle, log),
    update(state) {
      list.replaceChildren(...state.services.map((s) => h("tr", { "data-service": s.name },
        h("td", {}, s.name), h("td", {}, h("span", { class: `badge ${s.state}` }, s.state), s.reason ? ` ${s.reason}` : ""),
        h("td", {}, readiness(s)),
        h("td", {}, (s.ports || []).map((p) => `${p.host_address}:${p.host_port}→${p.guest_port}`).join(" ")),
        h("td", {}, String(s.restarts)), h("td", { class: "mono" }, s.command.join(" ")),
        h("td", {}, h("button", { class: "small", "data-testid": "service-log-open", onclick: () => watch(s.name) }, "log"),
          ["starting", "ready"].includes(s.state) ? h("button", { class: "small danger", onclick: () => stop(s.name) }, "stop") : null))));
    },
    close() { following?.close(); },
  };
}

// The network policy and its decision log (newest first), fetched when shown or refreshed.
export function networkTab(ctx) {
  const policy = h("div", { class: "note", "data-testid": "network-policy" });
  const list = h("tbody");
  const message = h("div", { class: "message" });
  const deniedOnly = h("input", { type: "checkbox", onchange: () => load() });

  async function load() {
    try {
      const { network, decisions } = await api(`${ctx.base}/network${deniedOnly.checked ? "?denied=1" : ""}`);
      const allowed = network.allow.length ? ` allow ${network.allow.join(" ")}` : "";
      policy.textContent = `policy ${network.policy}${allowed}; ${network.enforced ? "enforced" : "not enforced"}: ${network.detail}`;
      list.replaceChildren(...decisions.reverse().map((d) => h("tr", { class: `verdict-${d.verdict}` },
        h("td", {}, d.time), h("td", {}, d.verdict), h("td", { class: "mono" }, d.name || ""),
        h("td", { class: "mono" }, `${d.address}:${d.port}/${d.protocol}`), h("td", {}, d.reason))));
      message.replaceChildren();
    } catch (error) { showError(message, error); }
  }

  return {
    el: h("div", {}, h("div", { class: "toolbar" }, h("button", { onclick: () => load() }, "refresh"),
      h("label", {}, deniedOnly, " denied only")), policy, message, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["time", "verdict", "name", "address", "reason"].map((t) => h("th", {}, t)))), list)),
    shown: load,
  };
}
