// Types of the syncstream browser client (client.js). Hand-written: the client has no build step.
// The wire types follow the HTTP contract (docs/api.md) field for field.

/** `{"transactionId", "sourceId", "changedField"}`: sent with a write, echoed in its stream message. */
export interface Tx {
  transactionId: string;
  sourceId: string;
  changedField: string | null;
}

/** One change, as the stream sends it (the same JSON in catch-up, JSON mode and live). */
export interface StreamMessage<T = Record<string, unknown>> {
  /** A decimal integer as a string, increasing in commit order: compare with compareIds(), never as text. */
  activityId: string;
  action: "create" | "update" | "delete";
  entityType: string;
  entityId: string;
  organizationId: string | null;
  projectId: string | null;
  /** The fields an update changed, in the request's terms; null for create and delete. */
  changedKeys: string[] | null;
  createdAt: string;
  tx: Tx | null;
  /** The entity right after the change (for a delete, as it stood before). */
  data: T | null;
}

/** An RFC 9457 problem document, as the server sends it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  [extension: string]: unknown;
}

/** A refusal the stream cannot go on from (401, 403 or `forbidden`, 404, 400, a must_refetch loop), or a must_refetch. */
export class SyncStreamError extends Error {
  constructor(problem: Problem, status?: number);
  /** The problem's `type`: "unauthorized", "forbidden", "not_found", "bad_request", "must_refetch", "refetch_loop", … */
  readonly type: string;
  readonly status: number;
  readonly problem: Problem;
}

/** -1, 0 or 1 as activity ID `a` is older than, the same as, or newer than `b`. */
export function compareIds(a: string, b: string): -1 | 0 | 1;

/** A random hexadecimal ID (96 bits) after `prefix`; works outside secure contexts too. */
export function randomId(prefix?: string): string;

/** One parsed event-stream event; a `retry:` field comes alone, with `event: ""`. */
export interface SSEEvent {
  event: string;
  data: string;
  id: string | null;
  retry: number | null;
}

/** An incremental parser of the event-stream format (WHATWG HTML): feed decoded text, get complete events. */
export class SSEParser {
  feed(text: string): SSEEvent[];
}

/** Reconnection delays: attempt n waits min(maxMs, initialMs × multiplier^(n-1)) × (1 − jitter × random),
 * and at least the server's Retry-After. */
export interface Backoff {
  /** The first delay's ceiling, in ms. Default 500 (so the first retry comes within 0.1–0.5 s). */
  initialMs?: number;
  /** Default 2. */
  multiplier?: number;
  /** The cap, in ms. Default 10000. */
  maxMs?: number;
  /** The fraction of each delay taken off at random, 0–1. Default 0.8. */
  jitter?: number;
  /** While the server is unreachable (refused, dropped, ended), delays stay under this (ms) for the first
   * `fastWindowMs` of the outage, so that a restarted server is found within a second. Default 1000. */
  fastMaxMs?: number;
  /** Default 15000. After it, or when the server answers 429/5xx, delays grow up to `maxMs`. */
  fastWindowMs?: number;
}

type MaybePromise<T> = T | Promise<T>;

export interface SyncStreamOptions {
  /** The stream's URL, absolute or relative to the page: `/organizations/acme/sync/stream` or `/pages/stream`. */
  url: string;
  /** Where to start when there is no cursor: "-1" (all history, the default), "now", or an activity ID. */
  offset?: string;
  /** A stored cursor to resume from (e.g. from localStorage); wins over `offset`. */
  cursor?: string | null;
  /** Only these entity types (the `entityTypes` parameter). */
  entityTypes?: string[];
  /** A bearer token, or a function giving the current one (asked before every connection). Without it, the
   * session cookie authenticates (same origin, or `credentials: "include"`). */
  token?: string | null | (() => MaybePromise<string | null>);
  /** More request headers, or a function giving them before every connection. */
  headers?: Record<string, string> | (() => MaybePromise<Record<string, string>>);
  /** fetch()'s `credentials`. Default "same-origin". */
  credentials?: RequestCredentials;
  /** This client's `tx.sourceId`. Default: a random one per SyncStream. */
  sourceId?: string;
  backoff?: Backoff;
  /** No byte from the server for this long (ms) means the connection is dead. Default 95000 (three 30 s pings). */
  idleTimeoutMs?: number;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/**
 * - `idle`: not started; `connecting`: the first connection; `catching-up`: connected, sending history;
 * - `live`: caught up, changes arrive as they commit; `reconnecting`: lost the stream, trying again;
 * - `stopped`: stop() was called; `closed`: the stream cannot go on (an `error` event said why).
 */
export type StreamState = "idle" | "connecting" | "catching-up" | "live" | "reconnecting" | "stopped" | "closed";

export interface StateDetail {
  /** Why the state changed: "the server is unreachable", "shutdown", "slow_consumer", … */
  reason?: string;
  /** With `reconnecting`: the delay before the next attempt. 0 after a shutting-down server's close. */
  retryInMs?: number;
  problem?: Problem;
  error?: SyncStreamError;
}

export interface ChangeInfo {
  /** The change carries this client's sourceId: it is the echo of its own write. */
  own: boolean;
  /** The message's JSON, byte for byte as the server sent it. */
  raw: string;
}

export interface SyncStreamEvents {
  /** A new change, newer than the cursor (older ones are dropped), in ascending activity ID order. */
  change: (message: StreamMessage, info: ChangeInfo) => void;
  /** Catch-up is complete (the `offset` frame): every change up to `cursor` has been delivered. */
  caughtUp: (cursor: string | null) => void;
  /** The cursor moved (after each change, at catch-up) or was cleared (null, by a must_refetch): store it here. */
  cursor: (cursor: string | null) => void;
  state: (state: StreamState, detail: StateDetail) => void;
  /** The server cannot continue from the cursor: drop what you cached. The stream restarts from -1 by itself. */
  mustRefetch: (error: SyncStreamError) => void;
  /** The stream cannot go on; its state is `closed`. start() tries again (e.g. with a new token). */
  error: (error: SyncStreamError) => void;
  /** The changes of one network read have been delivered (a batch boundary, for rendering). */
  batch: () => void;
}

export class SyncStream {
  constructor(options: SyncStreamOptions);
  readonly cursor: string | null;
  readonly state: StreamState;
  readonly sourceId: string;
  /** Connections answered with an event stream, so far. */
  readonly connections: number;
  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof SyncStreamEvents>(type: K, listener: SyncStreamEvents[K]): () => void;
  /** Starts following (from the cursor, or `offset`); does nothing if already started. */
  start(): this;
  /** Closes the connection; start() resumes from the cursor. */
  stop(): this;
  /** Drops the connection and connects again now, from the cursor. */
  reconnect(): this;
  /** A `tx` for a write, with this client's sourceId and a new transactionId. */
  newTx(changedField?: string | null): Tx;
  /** Whether the message is the echo of a write made with newTx(). */
  isOwn(message: StreamMessage): boolean;
  /** Resolves with the change that carries `transactionId`: at once if it is among the latest 256 changes with
   * a tx received, else when it arrives (pass a signal to give up). */
  waitForTx(transactionId: string, options?: { signal?: AbortSignal }): Promise<StreamMessage>;
}

/** One change of a live collection. */
export type CollectionChange<T> =
  | { type: "insert" | "update"; id: string; value: T; previous: T | undefined; message: StreamMessage<T>; own: boolean }
  | { type: "delete"; id: string; value: undefined; previous: T; message: StreamMessage<T>; own: boolean }
  /** A must_refetch emptied the collection; it fills again from the start. */
  | { type: "reset" };

export interface LiveCollectionOptions<T> {
  /** Keep only entities of this type (`attachment`, `page`). */
  entityType?: string;
  /** Keep only the messages this accepts. */
  filter?: (message: StreamMessage<T>) => boolean;
}

export interface LiveCollectionEvents<T> {
  changes: (batch: { changes: CollectionChange<T>[]; collection: LiveCollection<T> }) => void;
  /** The first catch-up (or the first after a reset) is complete. */
  ready: () => void;
}

/** Entity ID → entity, kept current from the stream's create/update/delete messages. */
export class LiveCollection<T = Record<string, unknown>> implements Iterable<[string, T]> {
  constructor(stream: SyncStream, options?: LiveCollectionOptions<T>);
  readonly stream: SyncStream;
  readonly size: number;
  /** The stream has caught up since the collection was made (or reset). */
  readonly isReady: boolean;
  get(id: string): T | undefined;
  has(id: string): boolean;
  keys(): IterableIterator<string>;
  values(): IterableIterator<T>;
  entries(): IterableIterator<[string, T]>;
  [Symbol.iterator](): IterableIterator<[string, T]>;
  /** The entities, in the order they were first seen. */
  toArray(): T[];
  /** Resolves once the stream has caught up. */
  ready(): Promise<void>;
  /** Calls `listener` after each batch of changes; returns the unsubscribe. */
  subscribe(listener: LiveCollectionEvents<T>["changes"]): () => void;
  on<K extends keyof LiveCollectionEvents<T>>(type: K, listener: LiveCollectionEvents<T>[K]): () => void;
  /** Stops following the stream's messages; the stream itself is left running. */
  close(): void;
}
