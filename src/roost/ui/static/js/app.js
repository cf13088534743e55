// The dashboard's router: #/ is the workspaces list, #/ws/ID/TAB one workspace.
// Moving between a workspace's tabs keeps its view (and its open terminals).
import { listView } from "./list.js";
import { workspaceView } from "./workspace.js";

let current = null;

function route() {
  const main = document.getElementById("main");
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const wsId = parts[0] === "ws" && parts[1] ? parts[1] : null;
  const tab = parts[2] || "overview";
  if (current && wsId && current.id === wsId) {
    current.show(tab);
    return;
  }
  if (current) current.close();
  current = wsId ? workspaceView(main, wsId, tab) : listView(main);
}

window.addEventListener("hashchange", route);
route();
