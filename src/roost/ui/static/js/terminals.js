// Terminals: xterm.js tabs, each a WebSocket to one of the workspace's shells (open a new one
// or attach to a running one). Output arrives as binary frames from the shell's byte cursor;
// keys, resizes and Ctrl-C go back as JSON. Closing a tab leaves the shell running.
import { api, h, loadScript, showError } from "./dom.js";

function socketUrl(path) {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

function openTerminal(ctx, shellId, holder, onGone) {
  const term = new window.Terminal({ cursorBlink: true, fontSize: 13, scrollback: 5000, convertEol: false });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  const box = h("div", { class: "xterm-box", "data-shell": shellId });
  holder.append(box);
  term.open(box);
  const socket = new WebSocket(socketUrl(`${ctx.base}/shells/${encodeURIComponent(shellId)}/tty`));
  socket.binaryType = "arraybuffer";
  const send = (message) => { if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message)); };
  const resize = () => {
    if (box.offsetParent === null) return; // hidden: its size means nothing
    fit.fit();
    send({ type: "resize", cols: term.cols, rows: term.rows });
  };
  socket.onopen = resize;
  socket.onmessage = (event) => {
    if (typeof event.data === "string") {
      const note = JSON.parse(event.data);
      term.write(`\r\n\x1b[2m[roost: ${note.type === "exit" ? `shell ${note.state}` : note.message}]\x1b[0m\r\n`);
    } else {
      term.write(new Uint8Array(event.data));
    }
  };
  socket.onclose = () => onGone(shellId);
  term.onData((data) => send({ type: "input", data }));
  const observer = new ResizeObserver(resize);
  observer.observe(box);
  window.__roostTerminals = window.__roostTerminals || {};
  window.__roostTerminals[shellId] = term; // for tests and the curious: the buffer the user sees
  return {
    box, term, resize,
    interrupt: () => send({ type: "signal", signal: "INT" }),
    dispose() { observer.disconnect(); socket.close(); term.dispose(); box.remove(); delete window.__roostTerminals[shellId]; },
  };
}

export function terminalsTab(ctx) {
  const open = new Map();
  let active = null;
  const message = h("div", { class: "message" });
  const running = h("span", { class: "shells" });
  const tabBar = h("div", { class: "term-tabs" });
  const holder = h("div", { class: "term-holder" });

  function activate(shellId) {
    active = shellId;
    for (const [id, t] of open) t.box.hidden = id !== shellId;
    for (const tab of tabBar.children) tab.classList.toggle("active", tab.dataset.shell === shellId);
    const current = open.get(shellId);
    if (current) { current.resize(); current.term.focus(); }
  }

  function drop(shellId) {
    const t = open.get(shellId);
    if (!t) return;
    t.dispose();
    open.delete(shellId);
    tabBar.querySelector(`[data-shell="${CSS.escape(shellId)}"]`)?.remove();
    if (active === shellId) activate(open.keys().next().value);
  }

  async function attach(shellId) {
    await loadScript("/static/vendor/xterm.js");
    await loadScript("/static/vendor/addon-fit.js");
    if (!open.has(shellId)) {
      open.set(shellId, openTerminal(ctx, shellId, holder, () => {}));
      tabBar.append(h("span", { class: "term-tab", "data-shell": shellId },
        h("button", { class: "small name", onclick: () => activate(shellId) }, shellId),
        h("button", { class: "small", title: "Ctrl-C to the foreground job", onclick: () => open.get(shellId)?.interrupt() }, "^C"),
        h("button", { class: "small", title: "close the tab (the shell keeps running)", onclick: () => drop(shellId) }, "×")));
    }
    activate(shellId);
  }

  async function newShell() {
    try {
      const shell = await api(`${ctx.base}/shells`, { method: "POST", body: { cols: 120, rows: 32 } });
      await attach(shell.id);
    } catch (error) { showError(message, error); }
  }

  const el = h("div", { class: "terminals" },
    h("div", { class: "toolbar" }, h("button", { "data-testid": "new-shell", onclick: newShell }, "New shell"), " running: ", running),
    message, tabBar, holder);

  return {
    el,
    update(state) {
      const shells = (state.shells || []).filter((s) => s.state === "running");
      running.replaceChildren(...shells.map((s) =>
        h("button", { class: "small", "data-testid": "attach", "data-shell": s.id, onclick: () => attach(s.id) }, `attach ${s.id}`)));
    },
    shown() { if (active) activate(active); },
    close() { for (const id of [...open.keys()]) drop(id); },
  };
}
