// Read-only browsing: the exec history with each command's output, and the workspace's files.
import { api, h, showError, sizeText } from "./dom.js";

export function historyTab(ctx) {
  const list = h("tbody");
  const output = h("div", { class: "exec-output" });
  const message = h("div", { class: "message" });

  async function showOutput(entry) {
    try {
      const [out, err] = await Promise.all(["stdout", "stderr"].map((s) => api(`${ctx.base}/history/${entry.exec_id}/${s}`)));
      output.replaceChildren(
        h("h3", {}, `#${entry.exec_id} ${entry.command}`),
        h("h4", {}, `stdout (${sizeText(out.size)})`), h("pre", { class: "stdout" }, out.data),
        h("h4", {}, `stderr (${sizeText(err.size)})`), h("pre", { class: "stderr" }, err.data));
    } catch (error) { showError(output, error); }
  }

  async function load() {
    try {
      const entries = await api(`${ctx.base}/history`);
      list.replaceChildren(...entries.reverse().map((e) => h("tr", { class: "clickable", onclick: () => showOutput(e) },
        h("td", {}, `#${e.exec_id}`), h("td", {}, e.started_at), h("td", { class: "mono" }, e.command),
        h("td", {}, e.timed_out ? "timed out" : e.signal ? `signal ${e.signal}` : `exit ${e.exit_code}`),
        h("td", {}, `${Math.round(e.duration_ms)} ms`))));
    } catch (error) { showError(message, error); }
  }

  let lastCount = -1;
  return {
    el: h("div", {}, message, h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["#", "started", "command", "result", "took"].map((t) => h("th", {}, t)))), list), output),
    update(state) { // the overview's exec count moves when an exec finishes: fetch the history again then
      if (state.info.exec_count !== lastCount) { lastCount = state.info.exec_count; load(); }
    },
    shown: load,
  };
}

export function filesTab(ctx) {
  let path = "/workspace";
  const crumbs = h("div", { class: "path mono" });
  const list = h("tbody");
  const viewer = h("div", { class: "file-view" });

  function fileUrl(kind, p) { return `${ctx.base}/${kind}?path=${encodeURIComponent(p)}`; }

  async function view(entryPath) {
    try {
      const file = await api(fileUrl("file", entryPath));
      viewer.replaceChildren(
        h("div", { class: "toolbar" }, h("span", { class: "mono" }, file.path), ` ${sizeText(file.size)} `,
          h("a", { href: fileUrl("download", entryPath), download: "" }, "download")),
        file.binary ? h("p", {}, "binary file: download it to look inside")
          : h("pre", { class: "file-text" }, file.content, file.eof ? "" : "\n… (cut; download for the rest)"));
    } catch (error) { showError(viewer, error); }
  }

  async function load() {
    crumbs.replaceChildren(...path.split("/").filter(Boolean).flatMap((part, i, all) => {
      const target = "/" + all.slice(0, i + 1).join("/");
      return ["/", h("button", { class: "link", onclick: () => { path = target; load(); } }, part)];
    }));
    try {
      const listing = await api(fileUrl("files", path));
      const up = path === "/workspace" ? [] : [h("tr", { class: "clickable", onclick: () => { path = path.replace(/\/[^/]+$/, "") || "/"; load(); } },
        h("td", {}, ".."), h("td", {}, "dir"), h("td", {}, ""))];
      list.replaceChildren(...up, ...listing.entries.map((e) => h("tr", {
        class: "clickable", "data-name": e.name,
        onclick: () => { if (e.type === "dir") { path = e.path; load(); } else view(e.path); },
      }, h("td", { class: "mono" }, e.type === "dir" ? `${e.name}/` : e.name), h("td", {}, e.type),
        h("td", {}, e.type === "file" ? sizeText(e.size) : e.target || ""))));
    } catch (error) { showError(viewer, error); }
  }

  return {
    el: h("div", { class: "files" }, crumbs, h("div", { class: "split" },
      h("table", { class: "list" }, h("thead", {}, h("tr", {}, ["name", "type", "size"].map((t) => h("th", {}, t)))), list), viewer)),
    shown: load,
  };
}
