// Small DOM and API helpers shared by every view. Text always goes in as text (never as HTML):
// names, labels, file contents and logs come from workspaces nobody reviewed.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_" + status;
    this.hint = error.hint || "";
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function wsPath(id) {
  return `/api/workspaces/${encodeURIComponent(id)}`;
}

export function showError(where, error) {
  const text = error.hint ? `${error.message} (${error.code}): ${error.hint}` : `${error.message}`;
  where.replaceChildren(h("div", { class: "error", role: "alert" }, text));
}

export function confirmDialog(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
  });
}

// An EventSource that reports its state in the header and is closed when the view changes.
export function follow(path, event, onValue) {
  const source = new EventSource(path);
  const live = document.getElementById("live");
  source.addEventListener(event, (message) => onValue(JSON.parse(message.data)));
  source.addEventListener("failed", (message) => {
    const error = JSON.parse(message.data);
    live.textContent = `stopped: ${error.message}`;
    live.className = "live off";
    source.close();
  });
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
  return source;
}

export function ttlLeft(expiresAt) {
  if (!expiresAt) return "–";
  const seconds = Math.round((Date.parse(expiresAt) - Date.now()) / 1000);
  if (seconds <= 0) return "expired";
  const m = Math.floor(seconds / 60), s = seconds % 60;
  return m >= 60 ? `${Math.floor(m / 60)}h ${m % 60}m` : `${m}m ${String(s).padStart(2, "0")}s`;
}

export function sizeText(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function labelText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(" ");
}

// The large libraries load when a view first needs them, so the list paints without them.
const loaded = new Map();
export function loadScript(src) {
  if (!loaded.has(src)) {
    loaded.set(src, new Promise((resolve, reject) => {
      const script = h("script", { src });
      script.onload = resolve;
      script.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.append(script);
    }));
  }
  return loaded.get(src);
}
