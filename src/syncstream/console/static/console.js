// syncstream console: watch a stream live with the browser's own EventSource.
//
// One EventSource per view (an organization's stream, or the public pages stream); leaving a view closes
// it, because a browser allows only six HTTP/1.1 connections per origin and every open EventSource holds
// one. Authentication is the HttpOnly session cookie that POST /auth/sign-in sets: EventSource cannot send
// an Authorization header, but it sends cookies. The page's state is mirrored in data attributes of
// #stream (data-state, data-cursor, data-count, data-connections, data-open-sources) so that a person and a
// browser test read the same thing.
"use strict";

(() => {
  const MAX_ROWS = 1000; // the list keeps the newest ones; data-count keeps counting
  const MAX_RETRY_MS = 30000;

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
    stream: $("stream"),
    title: $("stream-title"),
    stateLabel: $("state-label"),
    cursorLabel: $("cursor-label"),
    count: $("message-count"),
    detail: $("stream-detail"),
    pause: $("pause"),
    reconnect: $("reconnect"),
    changes: $("changes"),
  };

  const state = {
    view: null, // {kind: "org", org: "<slug>"} or {kind: "pages"}
    source: null, // the view's EventSource, while open
    cursor: null, // last activity ID received, or the offset frame's cursor: where a reconnection resumes
    count: 0,
    connections: 0, // connections opened for this view (auto-reconnections included)
    openSources: 0, // EventSources open in this page: never more than one
    retryTimer: null,
    failures: 0,
    afterReset: false, // a must_refetch reset happened and its catch-up has not completed yet
    name: "idle",
  };

  // Activity IDs are decimal integers as strings, up to 2^63: compare them as BigInt, never as text.
  const isNewer = (id, than) => than === null || BigInt(id) > BigInt(than);

  function render() {
    const data = el.stream.dataset;
    data.state = state.name;
    data.cursor = state.cursor ?? "";
    data.count = String(state.count);
    data.connections = String(state.connections);
    data.openSources = String(state.openSources);
    data.view = state.view ? state.view.kind : "none";
    data.org = state.view && state.view.kind === "org" ? state.view.org : "";
    el.stateLabel.textContent = state.name.replace("-", " ");
    el.cursorLabel.textContent = state.cursor ?? "–";
    el.count.textContent = `${state.count} change${state.count === 1 ? "" : "s"}`;
  }

  function setState(name, detail = "") {
    state.name = name;
    el.detail.textContent = detail;
    render();
  }

  // -- the stream ------------------------------------------------------------------------------------------

  function streamPath() {
    if (!state.view) return null;
    return state.view.kind === "org"
      ? `/organizations/${encodeURIComponent(state.view.org)}/sync/stream`
      : "/pages/stream";
  }

  function closeSource() {
    if (state.retryTimer !== null) {
      clearTimeout(state.retryTimer);
      state.retryTimer = null;
    }
    if (state.source !== null) {
      state.source.close();
      state.source = null;
      state.openSources -= 1;
    }
    render();
  }

  function connect() {
    closeSource();
    // A new EventSource starts without a Last-Event-ID, so the cursor goes in `offset`; the browser's own
    // reconnections then send Last-Event-ID, which the server prefers.
    const url = `${streamPath()}?live=sse&offset=${encodeURIComponent(state.cursor ?? "-1")}`;
    const source = new EventSource(url);
    state.source = source;
    state.openSources += 1;
    setState("connecting");
    const current = () => source === state.source;

    source.addEventListener("open", () => {
      if (!current()) return;
      state.connections += 1;
      setState("catching-up");
    });
    source.addEventListener("change", (event) => {
      if (!current()) return;
      const message = JSON.parse(event.data);
      if (!isNewer(message.activityId, state.cursor)) return; // already shown
      state.cursor = message.activityId;
      state.count += 1;
      state.failures = 0;
      addRow(message);
      render();
    });
    source.addEventListener("offset", (event) => {
      if (!current()) return;
      const { cursor } = JSON.parse(event.data);
      if (cursor !== null && isNewer(cursor, state.cursor)) state.cursor = cursor;
      state.failures = 0;
      state.afterReset = false;
      setState("live");
    });
    source.addEventListener("error", (event) => {
      if (!current()) return;
      if (typeof event.data === "string") {
        // The server's `event: error` frame (a problem), not a connection error.
        const problem = parseProblem(event.data);
        if (problem.type === "forbidden") {
          closeSource();
          setState("closed", problem.detail || "access to this stream was lost");
        } else {
          // slow_consumer, unavailable: the server closes; the browser resumes with Last-Event-ID.
          setState("reconnecting", problem.type);
        }
        return;
      }
      if (source.readyState === EventSource.CONNECTING) {
        setState("reconnecting", "the browser reconnects with Last-Event-ID");
      } else {
        // CLOSED: the browser gave up, which it does on any answer but a 200 event stream. Ask why.
        diagnose();
      }
    });
  }

  function parseProblem(text) {
    try {
      return JSON.parse(text);
    } catch {
      return { type: "unknown_error", detail: text };
    }
  }

  async function diagnose() {
    const view = state.view;
    closeSource();
    setState("reconnecting", "finding out why the stream closed");
    let response;
    try {
      const offset = encodeURIComponent(state.cursor ?? "-1");
      response = await fetch(`${streamPath()}?offset=${offset}&limit=1`, { headers: { Accept: "application/json" } });
    } catch {
      if (view === state.view) scheduleRetry("the server is unreachable");
      return;
    }
    if (view !== state.view) return; // the user moved on meanwhile
    if (response.ok) {
      scheduleRetry("the stream was refused");
      return;
    }
    const problem = parseProblem(await response.text());
    if (problem.type === "must_refetch") {
      if (state.afterReset) {
        setState("closed", "must_refetch again right after a reset: not retrying");
        return;
      }
      // Everything shown may be stale: start again from the beginning, once.
      state.afterReset = true;
      state.cursor = null;
      state.count = 0;
      el.changes.replaceChildren();
      connect();
    } else if (response.status === 401) {
      signedOut();
      setState("closed", "signed out: sign in again");
    } else if (response.status === 429 || response.status >= 500) {
      const retryAfter = Number(response.headers.get("Retry-After")) * 1000 || 0;
      scheduleRetry(problem.title || `HTTP ${response.status}`, retryAfter);
    } else {
      setState("closed", problem.detail || problem.title || `HTTP ${response.status}`);
    }
  }

  function scheduleRetry(reason, atLeastMs = 0) {
    state.failures += 1;
    const ceiling = Math.min(MAX_RETRY_MS, 1000 * 2 ** Math.min(state.failures - 1, 10));
    const delay = Math.min(MAX_RETRY_MS, Math.max(atLeastMs, ceiling * (0.5 + Math.random() * 0.5)));
    setState("reconnecting", `${reason}; retrying in ${(delay / 1000).toFixed(1)} s`);
    state.retryTimer = setTimeout(() => {
      state.retryTimer = null;
      connect();
    }, delay);
  }

  function addRow(message) {
    const li = document.createElement("li");
    li.dataset.activityId = message.activityId;
    li.dataset.action = message.action;
    li.dataset.entityType = message.entityType;
    li.dataset.entityId = message.entityId;
    const part = (className, text) => {
      const span = document.createElement("span");
      span.className = className;
      span.textContent = text; // never innerHTML: names come from users
      li.append(span);
    };
    const created = new Date(message.createdAt);
    part("time", `${created.toLocaleTimeString()}.${String(created.getMilliseconds()).padStart(3, "0")}`);
    part("id", `#${message.activityId}`);
    part(`action action-${message.action}`, message.action);
    part("type", message.entityType);
    part("entity", message.entityId);
    if (message.changedKeys) part("keys", message.changedKeys.join(", "));
    const data = message.data || {};
    const label = typeof data.name === "string" ? data.name : data.title;
    if (typeof label === "string") part("label", label);
    if (message.tx) part("tx", `tx ${message.tx.transactionId}@${message.tx.sourceId}`);
    el.changes.prepend(li);
    while (el.changes.childElementCount > MAX_ROWS) el.changes.lastElementChild.remove();
  }

  function openView(view) {
    closeSource();
    state.view = view;
    state.cursor = null;
    state.count = 0;
    state.connections = 0;
    state.failures = 0;
    state.afterReset = false;
    el.changes.replaceChildren();
    el.title.textContent = view.kind === "org" ? `Organization ${view.org}` : "Public pages";
    el.pause.disabled = false;
    el.pause.textContent = "Pause";
    el.reconnect.disabled = false;
    connect();
  }

  // -- account and views --------------------------------------------------------------------------------

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
    el.who.textContent = user.email;
    el.signOut.hidden = false;
    el.signIn.hidden = true;
    el.signInError.textContent = "";
    return loadOrganizations();
  }

  function signedOut() {
    el.account.dataset.signedIn = "false";
    el.who.textContent = "Not signed in";
    el.signOut.hidden = true;
    el.signIn.hidden = false;
    el.orgSelect.disabled = true;
    el.orgSelect.dataset.count = "0";
    if (state.view && state.view.kind === "org") {
      closeSource();
      setState("closed", "signed out");
    }
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
      const problem = parseProblem(await response.text());
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
    if (el.orgSelect.value) openView({ kind: "org", org: el.orgSelect.value });
  });
  el.viewPages.addEventListener("click", () => {
    el.orgSelect.value = "";
    openView({ kind: "pages" });
  });
  el.pause.addEventListener("click", () => {
    if (state.name === "paused") {
      el.pause.textContent = "Pause";
      connect(); // resumes from the cursor: nothing written meanwhile is lost
    } else {
      closeSource();
      el.pause.textContent = "Resume";
      setState("paused");
    }
  });
  el.reconnect.addEventListener("click", () => {
    el.pause.textContent = "Pause";
    connect();
  });
  // Give the connection back as soon as the page goes away (and to the back/forward cache).
  window.addEventListener("pagehide", closeSource);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && state.view && state.name !== "paused" && state.name !== "closed") connect();
  });

  (async () => {
    const response = await fetch("/me", { headers: { Accept: "application/json" } });
    if (response.ok) await signedIn((await response.json()).user);
    else signedOut();
    document.body.dataset.ready = "true";
  })();
})();
