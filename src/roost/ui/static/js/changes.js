// Changes: the diff against the baseline or a snapshot, side by side with syntax highlighting
// (diff2html), its summary, and the patch as a download.
import { api, h, loadScript, showError } from "./dom.js";

export function changesTab(ctx) {
  const against = h("select", { "data-testid": "diff-against", onchange: () => load() }, h("option", { value: "baseline" }, "baseline"));
  const summary = h("span", { class: "summary", "data-testid": "diff-summary" });
  const patchLink = h("a", { download: "", "data-testid": "patch-download" }, "download patch");
  const view = h("div", { class: "diff-view", "data-testid": "diff-view" });
  const message = h("div", { class: "message" });

  async function load() {
    const target = against.value || "baseline";
    patchLink.href = `${ctx.base}/patch?against=${encodeURIComponent(target)}`;
    try {
      const result = await api(`${ctx.base}/diff?against=${encodeURIComponent(target)}`);
      const counts = Object.entries(result.counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(", ");
      summary.textContent = result.changes.length ? `${counts}${result.truncated ? " (patch cut; download it whole)" : ""}` : "no changes";
      view.replaceChildren();
      message.replaceChildren();
      if (!result.patch) return;
      await loadScript("/static/vendor/diff2html-ui-slim.min.js");
      const ui = new window.Diff2HtmlUI(view, result.patch, {
        outputFormat: "side-by-side", drawFileList: true, matching: "lines", highlight: true, fileListToggle: false,
      });
      ui.draw();
      ui.highlightCode();
    } catch (error) { showError(message, error); }
  }

  return {
    el: h("div", {}, h("div", { class: "toolbar" }, "against ", against, " ",
      h("button", { "data-testid": "diff-refresh", onclick: () => load() }, "refresh"), " ", summary, " ", patchLink), message, view),
    update(state) {
      const names = ["baseline", ...state.snapshots.map((s) => s.name)];
      const have = [...against.options].map((o) => o.value);
      if (names.join("\n") === have.join("\n")) return;
      const chosen = against.value;
      against.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
      against.value = names.includes(chosen) ? chosen : "baseline";
    },
    shown: load,
  };
}
