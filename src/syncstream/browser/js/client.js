// syncstream browser client: follow a stream with resume, and keep a live collection of its entities.
//
// One ES module, no dependencies, no build step; its types are in client.d.ts beside it. One file on purpose
// (not split by class): a page loads it with one request, and an app can vendor it by copying one file. The server serves
// both (/client.js, /client.d.ts), and `npm pack` in this folder makes the npm package.
//
// Why fetch and not EventSource: EventSource cannot send an Authorization header, waits the server's
// `retry:` hint (5 s by default) before reconnecting, and gives up silently on any non-200 answer. Reading
// the event stream from fetch() lets this client authenticate with a token or the session cookie, send
// Last-Event-ID itself, read the problem document of a refusal (401, 409 must_refetch, 429 Retry-After) and
// choose its own reconnection delays: a first retry within 0.5 s, then exponential with jitter, capped.

/** Field names are the contract's (docs/api.md); the client reads them and never renames them. */

// While the server is unreachable (a restart, a deploy) and for the first `fastWindowMs` of the outage, the
// delays stay under `fastMaxMs`: attempts that are refused cost next to nothing, and a client that had
// backed off to 4 s would stay away that long after the server is back. A server that answers 429/5xx is
// busy, not gone: those delays grow from the start (and never undercut its Retry-After).
const DEFAULT_BACKOFF = Object.freeze({
  initialMs: 500,
  multiplier: 2,
  maxMs: 10_000,
  jitter: 0.8,
  fastMaxMs: 1_000,
  fastWindowMs: 15_000,
});
// Three missed keep-alive pings at the server's default 30 s interval: the connection is dead.
const DEFAULT_IDLE_TIMEOUT_MS = 95_000;
// A Retry-After longer than this is taken as this: a client left waiting for hours looks broken.
const MAX_RETRY_AFTER_MS = 300_000;
// How many of the latest changes with a tx waitForTx() can still find after they arrived.
const RECENT_TX = 256;

/** An error the stream cannot go on from (or a must_refetch), with the server's RFC 9457 problem. */
export class SyncStreamError extends Error {
  constructor(problem, status = problem.status ?? 0) {
    super(problem.detail || problem.title || problem.type);
    this.name = "SyncStreamError";
    this.type = problem.type;
    this.status = status;
    this.problem = problem;
  }
}

/** Activity IDs are decimal integers as strings, up to 2^63: compare them as BigInt, never as text. */
export function compareIds(a, b) {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

// -- Server-Sent Events, as the WHATWG HTML standard parses them --------------------------------------------

/** An incremental event-stream parser: feed it decoded text, get the complete events back. */
export class SSEParser {
  #buffer = "";
  #data = [];
  #event = "";
  #id = null;
  #started = false;
  #pendingCR = false;

  /** @returns {{event: string, data: string, id: string | null, retry: number | null}[]} */
  feed(text) {
    if (!this.#started && text.length > 0) {
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    // A CR that ended the previous chunk already ended its line: drop the LF that may follow it.
    if (this.#pendingCR && text.startsWith("\n")) text = text.slice(1);
    this.#pendingCR = false;
    const events = [];
    let buffer = this.#buffer + text;
    let start = 0;
    for (let i = 0; i < buffer.length; i += 1) {
      const c = buffer.charCodeAt(i);
      if (c !== 0x0a && c !== 0x0d) continue;
      this.#line(buffer.slice(start, i), events);
      if (c === 0x0d) {
        if (i + 1 === buffer.length) this.#pendingCR = true;
        else if (buffer.charCodeAt(i + 1) === 0x0a) i += 1;
      }
      start = i + 1;
    }
    this.#buffer = buffer.slice(start);
    return events;
  }

  #line(line, events) {
    if (line === "") {
      if (this.#data.length > 0) {
        events.push({ event: this.#event || "message", data: this.#data.join("\n"), id: this.#id, retry: null });
      }
      this.#data = [];
      this.#event = "";
      return;
    }
    if (line.startsWith(":")) return; // a comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
    else if (field === "id" && !value.includes("\0")) this.#id = value;
    else if (field === "retry" && /^\d+$/.test(value)) events.push({ event: "", data: "", id: null, retry: Number(value) });
  }
}

// -- small helpers ---------------------------------------------------------------------------------------

/** A random ID for sources and transactions; crypto.randomUUID needs a secure context, this does not. */
export function randomId(prefix = "") {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function reportListenerError(error) {
  // A listener that throws must not stop the stream; the error still reaches the console and onerror.
  if (typeof globalThis.reportError === "function") globalThis.reportError(error);
  else setTimeout(() => { throw error; });
}

function parseProblem(text, status) {
  try {
    const problem = JSON.parse(text);
    if (problem && typeof problem.type === "string") return problem;
  } catch {
    // not JSON: a proxy's page, say
  }
  return { type: status ? `http_${status}` : "unknown_error", title: `HTTP ${status}`, status, detail: text.slice(0, 200) };
}

function retryAfterMs(response) {
  const value = response.headers.get("Retry-After");
  if (value === null) return 0;
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS) : 0;
}

class Emitter {
  #listeners = new Map();

  on(type, listener) {
    let set = this.#listeners.get(type);
    if (set === undefined) this.#listeners.set(type, (set = new Set()));
    const entry = (...args) => listener(...args); // the same function may be added twice
    set.add(entry);
    return () => set.delete(entry);
  }

  emit(type, ...args) {
    const set = this.#listeners.get(type);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (error) {
        reportListenerError(error);
      }
    }
  }
}

// -- the stream ------------------------------------------------------------------------------------------

/**
 * Follows one stream (an organization's sync stream or the public pages stream): catch-up from its cursor,
 * then live, reconnecting after any drop with Last-Event-ID so that every change arrives exactly once, in
 * order. See client.d.ts for the options and events.
 */
export class SyncStream {
  #options;
  #emitter = new Emitter();
  #cursor;
  #state = "idle";
  #run = null; // the current attempt: {controller, idleTimer, timedOut}
  #timer = null; // a scheduled reconnection
  #failures = 0;
  #lost = false; // the stream was lost (not stopped) and is not live again yet
  #outageStart = 0; // when the first of the current run of failures happened (performance.now())
  #afterReset = false; // a must_refetch restart whose catch-up has not completed yet
  #connections = 0;
  #waiters = new Map(); // transactionId -> [resolve]
  // The latest changes that carried a tx, so that waitForTx called after its write's response (when the
  // change may already have arrived) still finds it. Bounded: the oldest is forgotten first.
  #recentTx = new Map(); // transactionId -> message
  #sourceId;
  // The network came back: a pending reconnection need not wait out its delay.
  #online = () => {
    if (this.#timer !== null) this.reconnect();
  };

  constructor(options) {
    if (!options || typeof options.url !== "string") throw new TypeError("SyncStream needs a url");
    this.#options = {
      offset: "-1",
      credentials: "same-origin",
      idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
      ...options,
      backoff: { ...DEFAULT_BACKOFF, ...(options.backoff || {}) },
    };
    this.#cursor = options.cursor ?? null;
    this.#sourceId = options.sourceId ?? randomId("src-");
  }

  /** The last activity ID processed (or the caught-up cursor): where the next connection resumes. */
  get cursor() {
    return this.#cursor;
  }

  get state() {
    return this.#state;
  }

  /** This client's source ID: put in every write's `tx` (see newTx), it tells its own changes apart. */
  get sourceId() {
    return this.#sourceId;
  }

  /** Connections that were answered with an event stream, since this object was made. */
  get connections() {
    return this.#connections;
  }

  on(type, listener) {
    return this.#emitter.on(type, listener);
  }

  /** Starts following (from the cursor, or from `offset` when there is none). Does nothing if started. */
  start() {
    if (this.#run !== null || this.#timer !== null) return this;
    globalThis.addEventListener?.("online", this.#online);
    this.#connect();
    return this;
  }

  /** Closes the connection; start() resumes from the cursor. */
  stop() {
    globalThis.removeEventListener?.("online", this.#online);
    this.#halt();
    this.#setState("stopped");
    return this;
  }

  /** Drops the connection (if any) and connects again now, from the cursor (e.g. after the network came back). */
  reconnect() {
    globalThis.addEventListener?.("online", this.#online);
    this.#halt();
    this.#failures = 0;
    this.#connect();
    return this;
  }

  /** A `tx` for a write: the change it makes will come back with `own: true`. */
  newTx(changedField = null) {
    return { transactionId: randomId("tx-"), sourceId: this.#sourceId, changedField };
  }

  /** Whether a message is the echo of a write made with this client's newTx(). */
  isOwn(message) {
    return message.tx != null && message.tx.sourceId === this.#sourceId;
  }

  /**
   * Resolves with the change that carries this transactionId: at once if it is among the latest 256 changes
   * with a tx received, or when it arrives.
   */
  waitForTx(transactionId, { signal } = {}) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const seen = this.#recentTx.get(transactionId);
      if (seen !== undefined) return resolve(seen);
      let list = this.#waiters.get(transactionId);
      if (list === undefined) this.#waiters.set(transactionId, (list = []));
      const entry = (message) => resolve(message);
      list.push(entry);
      signal?.addEventListener("abort", () => {
        const index = list.indexOf(entry);
        if (index >= 0) list.splice(index, 1);
        if (list.length === 0) this.#waiters.delete(transactionId);
        reject(signal.reason);
      }, { once: true });
    });
  }

  // -- connecting ----------------------------------------------------------------------------------------

  #halt() {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const run = this.#run;
    this.#run = null;
    if (run !== null) {
      clearTimeout(run.idleTimer);
      run.controller.abort();
    }
  }

  #setState(state, detail = {}) {
    this.#state = state;
    this.#emitter.emit("state", state, detail);
  }

  #connect() {
    this.#timer = null;
    const run = { controller: new AbortController(), idleTimer: null, timedOut: false, wasLive: false };
    this.#run = run;
    this.#attempt(run).then(
      (outcome) => this.#after(run, outcome),
      (error) => this.#after(run, { kind: "retry", reason: String(error) }),
    );
  }

  async #url(offset) {
    const base = globalThis.location ? globalThis.location.href : undefined;
    const url = new URL(this.#options.url, base);
    url.searchParams.set("live", "sse");
    url.searchParams.set("offset", offset);
    if (this.#options.entityTypes?.length) url.searchParams.set("entityTypes", this.#options.entityTypes.join(","));
    return url;
  }

  async #headers() {
    const headers = { Accept: "text/event-stream" };
    const option = this.#options.headers;
    Object.assign(headers, typeof option === "function" ? await option() : option || {});
    const token = typeof this.#options.token === "function" ? await this.#options.token() : this.#options.token;
    if (token) headers.Authorization = `Bearer ${token}`;
    if (this.#cursor !== null) headers["Last-Event-ID"] = this.#cursor;
    return headers;
  }

  async #attempt(run) {
    this.#setState(this.#lost ? "reconnecting" : "connecting", { reason: "connecting" });
    const offset = this.#cursor ?? String(this.#options.offset);
    let response;
    try {
      const fetcher = this.#options.fetch ?? globalThis.fetch.bind(globalThis);
      response = await fetcher(await this.#url(offset), {
        headers: await this.#headers(),
        credentials: this.#options.credentials,
        cache: "no-store",
        signal: run.controller.signal,
      });
    } catch (error) {
      if (run.controller.signal.aborted) return { kind: "aborted" };
      return { kind: "retry", reason: "the server is unreachable", unreachable: true };
    }
    if (!response.ok) return this.#refusal(response, offset);
    if (!(response.headers.get("Content-Type") || "").startsWith("text/event-stream") || response.body === null) {
      run.controller.abort();
      return { kind: "retry", reason: "the answer was not an event stream" };
    }
    this.#connections += 1;
    this.#setState("catching-up");
    return this.#read(run, response.body);
  }

  async #refusal(response, offset) {
    const problem = parseProblem(await response.text().catch(() => ""), response.status);
    const status = response.status;
    if (problem.type === "must_refetch") return { kind: "refetch", problem, fromStart: offset === "-1" };
    if (status === 429 || status === 408 || status >= 500) {
      return { kind: "retry", reason: problem.title || `HTTP ${status}`, atLeastMs: retryAfterMs(response) };
    }
    return { kind: "fatal", error: new SyncStreamError(problem, status) };
  }

  async #read(run, body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SSEParser();
    const idle = () => {
      clearTimeout(run.idleTimer);
      run.idleTimer = setTimeout(() => {
        run.timedOut = true;
        run.controller.abort();
      }, this.#options.idleTimeoutMs);
    };
    try {
      idle();
      for (;;) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch {
          if (run.timedOut) return { kind: "retry", reason: "no data from the server for too long" };
          if (run.controller.signal.aborted) return { kind: "aborted" };
          return { kind: "retry", reason: "the connection dropped", unreachable: true };
        }
        if (chunk.done) return { kind: "retry", reason: "the server closed the stream", unreachable: true };
        if (run !== this.#run) return { kind: "aborted" };
        idle();
        for (const event of parser.feed(chunk.value)) {
          const outcome = this.#frame(run, event);
          if (outcome !== null) {
            this.#emitter.emit("batch");
            return outcome;
          }
          if (run !== this.#run) return { kind: "aborted" }; // a listener stopped or restarted the stream
        }
        this.#emitter.emit("batch");
      }
    } finally {
      clearTimeout(run.idleTimer);
      reader.cancel().catch(() => {});
    }
  }

  /** Handles one frame; returns how the connection ends, or null to go on. */
  #frame(run, event) {
    switch (event.event) {
      case "change": {
        const message = JSON.parse(event.data);
        const id = message.activityId;
        // At or below the cursor: already processed (a replaying proxy cannot make us apply it twice).
        if (this.#cursor !== null && compareIds(id, this.#cursor) <= 0) return null;
        this.#cursor = id;
        const own = this.isOwn(message);
        this.#emitter.emit("change", message, { own, raw: event.data });
        this.#emitter.emit("cursor", id);
        if (message.tx) this.#settleTx(message);
        return null;
      }
      case "offset": {
        const { cursor } = JSON.parse(event.data);
        if (cursor !== null && (this.#cursor === null || compareIds(cursor, this.#cursor) > 0)) {
          this.#cursor = cursor;
          this.#emitter.emit("cursor", cursor);
        }
        this.#failures = 0;
        this.#lost = false;
        this.#afterReset = false;
        run.wasLive = true;
        this.#setState("live");
        this.#emitter.emit("caughtUp", this.#cursor);
        return null;
      }
      case "error": {
        const problem = parseProblem(event.data, 0);
        if (problem.type === "must_refetch") return { kind: "refetch", problem, fromStart: false };
        if (problem.type === "forbidden") return { kind: "fatal", error: new SyncStreamError(problem, 403) };
        // slow_consumer, unavailable: the server closes; resuming from the cursor loses nothing.
        return { kind: "retry", reason: problem.type, problem };
      }
      case "close": {
        // A server shutting down: reconnect at once (to another process, or to it when it is back).
        let reason = "close";
        try {
          reason = JSON.parse(event.data).reason || reason;
        } catch {
          // an empty or odd close frame is still a close
        }
        return { kind: "retry", reason, immediate: run.wasLive };
      }
      default:
        // ping, retry: (this client chooses its own delays), and anything a later server may add.
        return null;
    }
  }

  #settleTx(message) {
    const id = message.tx.transactionId;
    this.#recentTx.delete(id);
    this.#recentTx.set(id, message);
    if (this.#recentTx.size > RECENT_TX) this.#recentTx.delete(this.#recentTx.keys().next().value);
    const waiting = this.#waiters.get(id);
    if (waiting !== undefined) {
      this.#waiters.delete(id);
      for (const resolve of waiting) resolve(message);
    }
  }

  #after(run, outcome) {
    if (run !== this.#run || outcome.kind === "aborted") return; // stopped or superseded meanwhile
    this.#run = null;
    if (outcome.kind === "fatal") {
      this.#setState("closed", { reason: outcome.error.type, error: outcome.error });
      this.#emitter.emit("error", outcome.error);
      return;
    }
    if (outcome.kind === "refetch") {
      const error = new SyncStreamError(outcome.problem, 409);
      if (this.#afterReset || outcome.fromStart) {
        // A must_refetch again before the restarted stream caught up: resetting again would loop.
        const loop = new SyncStreamError({ ...outcome.problem, type: "refetch_loop", detail: "must_refetch again right after starting over" }, 409);
        this.#setState("closed", { reason: "refetch_loop", error: loop });
        this.#emitter.emit("error", loop);
        return;
      }
      this.#afterReset = true;
      this.#cursor = null;
      this.#options.offset = "-1";
      this.#emitter.emit("cursor", null);
      this.#emitter.emit("mustRefetch", error);
      if (this.#run === null && this.#timer === null && this.#state !== "stopped") this.#connect();
      return;
    }
    this.#lost = true;
    // A clean close by a server that is shutting down, after the stream was live: at once.
    if (outcome.immediate) {
      this.#setState("reconnecting", { reason: outcome.reason, retryInMs: 0 });
      this.#connect();
      return;
    }
    this.#failures += 1;
    if (this.#failures === 1) this.#outageStart = performance.now();
    const { initialMs, multiplier, maxMs, jitter, fastMaxMs, fastWindowMs } = this.#options.backoff;
    let ceiling = Math.min(maxMs, initialMs * multiplier ** (this.#failures - 1));
    if (outcome.unreachable && performance.now() - this.#outageStart < fastWindowMs) {
      ceiling = Math.min(ceiling, Math.max(fastMaxMs, initialMs));
    }
    const delay = Math.max(outcome.atLeastMs || 0, ceiling * (1 - jitter * Math.random()));
    this.#setState("reconnecting", { reason: outcome.reason, retryInMs: delay, problem: outcome.problem });
    this.#timer = setTimeout(() => this.#connect(), delay);
  }
}

// -- the live collection ---------------------------------------------------------------------------------

/**
 * Entity ID → entity, kept current from a stream's create/update/delete messages, with change callbacks:
 * what Electric calls a Shape. Listeners get the changes in batches (what one read of the network brought),
 * so a long catch-up does not call them once per message.
 */
export class LiveCollection {
  #entities = new Map();
  #emitter = new Emitter();
  #pending = [];
  #ready = false;
  #readyWaiters = [];
  #stream;
  #entityType;
  #filter;
  #unsubscribe;

  constructor(stream, { entityType, filter } = {}) {
    this.#stream = stream;
    this.#entityType = entityType ?? null;
    this.#filter = filter ?? null;
    const subscriptions = [
      stream.on("change", (message, info) => this.#apply(message, info.own)),
      stream.on("batch", () => this.#flush()),
      stream.on("caughtUp", () => {
        this.#flush();
        if (!this.#ready) {
          this.#ready = true;
          for (const resolve of this.#readyWaiters.splice(0)) resolve();
          this.#emitter.emit("ready");
        }
      }),
      stream.on("mustRefetch", () => this.#reset()),
    ];
    this.#unsubscribe = () => subscriptions.forEach((off) => off());
  }

  get stream() {
    return this.#stream;
  }

  get size() {
    return this.#entities.size;
  }

  /** Whether the stream has caught up since the collection was made (or last reset). */
  get isReady() {
    return this.#ready;
  }

  get(id) {
    return this.#entities.get(id);
  }

  has(id) {
    return this.#entities.has(id);
  }

  keys() {
    return this.#entities.keys();
  }

  values() {
    return this.#entities.values();
  }

  entries() {
    return this.#entities.entries();
  }

  [Symbol.iterator]() {
    return this.#entities.entries();
  }

  /** A plain copy of the entities, in the order they were first seen. */
  toArray() {
    return [...this.#entities.values()];
  }

  /** Resolves once the stream has caught up (every entity that existed is in the collection). */
  ready() {
    return this.#ready ? Promise.resolve() : new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  /** Calls `listener({changes, collection})` after each batch of changes; returns the unsubscribe. */
  subscribe(listener) {
    return this.#emitter.on("changes", listener);
  }

  on(type, listener) {
    return this.#emitter.on(type, listener);
  }

  /** Stops following the stream's messages (the stream itself is left as it is). */
  close() {
    this.#unsubscribe();
  }

  #apply(message, own) {
    if (this.#entityType !== null && message.entityType !== this.#entityType) return;
    if (this.#filter !== null && !this.#filter(message)) return;
    const id = message.entityId;
    const previous = this.#entities.get(id);
    if (message.action === "delete") {
      if (previous === undefined) return;
      this.#entities.delete(id);
      this.#pending.push({ type: "delete", id, value: undefined, previous, message, own });
      return;
    }
    const value = message.data ?? {};
    this.#entities.set(id, value);
    const type = previous === undefined ? "insert" : "update";
    this.#pending.push({ type, id, value, previous, message, own });
  }

  #flush() {
    if (this.#pending.length === 0) return;
    const changes = this.#pending;
    this.#pending = [];
    this.#emitter.emit("changes", { changes, collection: this });
  }

  #reset() {
    this.#pending = [];
    this.#entities.clear();
    this.#ready = false;
    this.#emitter.emit("changes", { changes: [{ type: "reset" }], collection: this });
  }
}
