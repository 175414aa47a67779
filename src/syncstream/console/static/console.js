// syncstream console: watch and inspect a stream live, with the server's own browser client (/client.js).
//
// One stream per view (an organization's stream, or the public pages stream); leaving a view stops it,
// because a browser allows only six HTTP/1.1 connections per origin and every open stream holds one.
// Authentication is the HttpOnly session cookie that POST /auth/sign-in sets (the client's fetch sends it).
// The page's state is mirrored in data attributes of #stream (data-state, data-cursor, data-count,
// data-shown, data-connections, data-open-sources) so that a person and a browser test read the same thing.

import { SyncStream } from "/client.js";
import { ChangeList, commands } from "./rows.js";
import { ServerPanel } from "./server.js";

const $ = (id) => document.getElementById(id);
const el = {
  account: $("account"),
  who: $("who"),
  signOut: $("sign-out"),
  signIn: $("sign-in"),
  signInForm: $("sign-in-form"),
  email: $("email"),
  password: $("password"),
  signInError: $("sign-in-error"),
  orgSelect: $("org-select"),
  viewPages: $("view-pages"),
  toggleServer: $("toggle-server"),
  stream: $("stream"),
  title: $("stream-title"),
  stateLabel: $("state-label"),
  cursorLabel: $("cursor-label"),
  count: $("message-count"),
  detail: $("stream-detail"),
  pause: $("pause"),
  reconnect: $("reconnect"),
  clear: $("clear"),
  startForm: $("start-form"),
  startFrom: $("start-from"),
  startId: $("start-id"),
  startApply: $("start-apply"),
  filterType: $("filter-type"),
  filterAction: $("filter-action"),
  filterText: $("filter-text"),
  copyCurl: $("copy-curl"),
  copyTail: $("copy-tail"),
  command: $("command"),
  changes: $("changes"),
};

const list = new ChangeList(el.changes);
const server = new ServerPanel({
  panel: $("server"),
  refresh: $("server-refresh"),
  health: $("server-health"),
  bus: $("server-bus"),
  connections: $("server-connections"),
  process: $("server-process"),
  streams: $("server-streams"),
  error: $("server-error"),
});

const state = {
  view: null, // {kind: "org", org: "<slug>", offset} or {kind: "pages", offset}
  stream: null, // the view's SyncStream
  count: 0, // changes received since the view opened (or was cleared)
  name: "idle",
  detail: "",
};

const STATE_NAMES = { stopped: "paused" }; // the client's words -> the console's

function render() {
  const data = el.stream.dataset;
  const stream = state.stream;
  data.state = state.name;
  data.cursor = stream?.cursor ?? "";
  data.count = String(state.count);
  data.shown = String(list.shown);
  data.connections = String(stream?.connections ?? 0);
  data.openSources = stream !== null && !["stopped", "closed"].includes(stream.state) ? "1" : "0";
  data.view = state.view ? state.view.kind : "none";
  data.org = state.view?.kind === "org" ? state.view.org : "";
  el.stateLabel.textContent = state.name.replace("-", " ");
  el.detail.textContent = state.detail;
  el.cursorLabel.textContent = stream?.cursor ?? "–";
  el.count.textContent = `${state.count} change${state.count === 1 ? "" : "s"}`;
  const open = state.view !== null;
  for (const control of [el.pause, el.reconnect, el.clear, el.startFrom, el.startId, el.startApply, el.copyCurl, el.copyTail]) {
    control.disabled = !open;
  }
  el.startId.hidden = el.startFrom.value !== "id";
  el.pause.textContent = state.name === "paused" ? "Resume" : "Pause";
}

// -- the view's stream ---------------------------------------------------------------------------------------

function streamPath(view) {
  return view.kind === "org" ? `/organizations/${encodeURIComponent(view.org)}/sync/stream` : "/pages/stream";
}

function describe(detail) {
  if (detail.retryInMs === undefined) return detail.reason && detail.reason !== "connecting" ? detail.reason : "";
  return `${detail.reason}; retrying in ${(detail.retryInMs / 1000).toFixed(1)} s`;
}

function openView(view) {
  closeView();
  state.view = view;
  state.count = 0;
  list.clear();
  el.title.textContent = view.kind === "org" ? `Organization ${view.org}` : "Public pages";
  const stream = new SyncStream({ url: streamPath(view), offset: view.offset });
  state.stream = stream;
  const current = () => stream === state.stream;
  stream.on("state", (name, detail) => {
    if (!current()) return;
    state.name = STATE_NAMES[name] ?? name;
    state.detail = describe(detail);
    if (name === "live") el.stream.dataset.liveAt = String(Date.now()); // when it last went live, for tests
    render();
  });
  stream.on("change", (message, info) => {
    if (!current()) return;
    state.count += 1;
    list.add(message, info);
  });
  stream.on("batch", () => current() && render());
  stream.on("mustRefetch", () => {
    if (!current()) return;
    // Everything shown may be stale: the client starts again from the beginning; so does the list.
    state.count = 0;
    list.clear();
    state.detail = "must_refetch: starting again from the beginning";
    render();
  });
  stream.on("error", (error) => {
    if (!current()) return;
    if (error.status === 401) signedOut();
    state.detail = error.status === 401 ? "signed out: sign in again" : error.message;
    render();
  });
  stream.start();
  updateCommand();
  render();
}

function closeView() {
  state.stream?.stop();
  state.stream = null;
  state.view = null;
  state.name = "idle";
  state.detail = "";
}

// -- inspector controls ------------------------------------------------------------------------------------

function currentFilter() {
  return { type: el.filterType.value, action: el.filterAction.value, text: el.filterText.value };
}

function updateCommand() {
  if (state.view === null) {
    el.command.textContent = "";
    return null;
  }
  const built = commands({
    origin: location.origin,
    path: streamPath(state.view),
    offset: state.view.offset,
    authenticated: state.view.kind === "org",
    ...currentFilter(),
  });
  el.command.dataset.curl = built.curl;
  el.command.dataset.tail = built.tail;
  return built;
}

async function copy(which) {
  const built = updateCommand();
  if (built === null) return;
  el.command.textContent = built[which];
  try {
    await navigator.clipboard.writeText(built[which]);
    el.command.dataset.copied = which;
  } catch {
    // No clipboard (not a secure context, or no permission): the command is shown, selected, to copy by hand.
    getSelection().selectAllChildren(el.command);
    el.command.dataset.copied = "";
  }
}

for (const input of [el.filterType, el.filterAction, el.filterText]) {
  input.addEventListener("input", () => {
    list.setFilter(currentFilter());
    updateCommand();
    render();
  });
}
el.copyCurl.addEventListener("click", () => copy("curl"));
el.copyTail.addEventListener("click", () => copy("tail"));
el.clear.addEventListener("click", () => {
  list.clear();
  state.count = 0;
  render();
});
el.startFrom.addEventListener("change", () => {
  render();
  if (!el.startId.hidden) el.startId.focus();
});
el.startForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (state.view === null) return;
  let offset = el.startFrom.value;
  if (offset === "id") {
    offset = el.startId.value.trim();
    if (!/^\d+$/.test(offset)) {
      el.startId.setCustomValidity("an activity ID is a non-negative integer");
      el.startId.reportValidity();
      return;
    }
  }
  el.startId.setCustomValidity("");
  openView({ ...state.view, offset });
});
el.pause.addEventListener("click", () => {
  if (state.stream === null) return;
  if (state.name === "paused") state.stream.start(); // resumes from the cursor: nothing written meanwhile is lost
  else state.stream.stop();
});
el.reconnect.addEventListener("click", () => state.stream?.reconnect());

// -- account and views -----------------------------------------------------------------------------------

async function loadOrganizations() {
  const response = await fetch("/organizations", { headers: { Accept: "application/json" } });
  if (response.status === 401) {
    signedOut();
    return;
  }
  const { items } = await response.json();
  const options = items.map((org) => {
    const option = document.createElement("option");
    option.value = org.slug;
    option.textContent = `${org.name} (${org.slug})`;
    return option;
  });
  const placeholder = document.createElement("option");
  placeholder.value = "";
  placeholder.textContent = items.length ? "Pick an organization" : "You belong to no organization";
  el.orgSelect.replaceChildren(placeholder, ...options);
  el.orgSelect.disabled = false;
  el.orgSelect.dataset.count = String(items.length);
}

function signedIn(user) {
  el.account.dataset.signedIn = "true";
  el.account.dataset.admin = String(user.role === "admin");
  el.who.textContent = user.email;
  el.signOut.hidden = false;
  el.signIn.hidden = true;
  el.signInError.textContent = "";
  el.toggleServer.hidden = user.role !== "admin";
  return loadOrganizations();
}

function signedOut() {
  el.account.dataset.signedIn = "false";
  el.account.dataset.admin = "false";
  el.who.textContent = "Not signed in";
  el.signOut.hidden = true;
  el.signIn.hidden = false;
  el.orgSelect.disabled = true;
  el.orgSelect.value = "";
  el.orgSelect.dataset.count = "0";
  el.toggleServer.hidden = true;
  el.toggleServer.setAttribute("aria-expanded", "false");
  server.hide();
  if (state.view?.kind === "org") {
    // What was shown belonged to the session: gone with it, and nothing left to pause or copy.
    closeView();
    list.clear();
    state.count = 0;
    state.name = "closed";
    state.detail = "signed out";
    el.title.textContent = "Pick a stream";
    updateCommand();
  }
  render();
}

el.signInForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  el.signInError.textContent = "";
  const response = await fetch("/auth/sign-in", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ email: el.email.value, password: el.password.value }),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    el.signInError.textContent = problem.detail || problem.title || `HTTP ${response.status}`;
    return;
  }
  el.password.value = "";
  await signedIn((await response.json()).user);
});

el.signOut.addEventListener("click", async () => {
  await fetch("/auth/sign-out", { method: "POST" });
  signedOut();
});

el.orgSelect.addEventListener("change", () => {
  if (el.orgSelect.value) openView({ kind: "org", org: el.orgSelect.value, offset: el.startFrom.value === "now" ? "now" : "-1" });
});
el.viewPages.addEventListener("click", () => {
  el.orgSelect.value = "";
  openView({ kind: "pages", offset: el.startFrom.value === "now" ? "now" : "-1" });
});
el.toggleServer.addEventListener("click", () => {
  const open = !server.isOpen;
  el.toggleServer.setAttribute("aria-expanded", String(open));
  if (open) server.show();
  else server.hide();
});

// Give the connection back as soon as the page goes away (and to the back/forward cache).
window.addEventListener("pagehide", () => {
  if (state.stream !== null && state.name !== "paused") state.stream.stop();
});
window.addEventListener("pageshow", (event) => {
  if (event.persisted && state.stream !== null && state.stream.state === "stopped") state.stream.start();
});

(async () => {
  const response = await fetch("/me", { headers: { Accept: "application/json" } });
  if (response.ok) await signedIn((await response.json()).user);
  else signedOut();
  render();
  document.body.dataset.ready = "true";
})();
