// The console's list of changes: one row per change, a click shows its full JSON, filters hide what does not
// match, and the commands that reproduce the view in a terminal.

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** `19:30:14.291`: local time on a 24-hour clock with milliseconds, the same width on every row. */
export function formatTime(iso) {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  return `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${pad(t.getMilliseconds(), 3)}`;
}

/** A word for a POSIX shell: single-quoted, with any single quote closed, escaped and reopened. */
export function shellQuote(text) {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/**
 * The curl and `syncstream tail` commands for a view. Neither can show the console's session (an HttpOnly
 * cookie), so both read the token from $SYNCSTREAM_TOKEN. The type filter becomes `entityTypes`; the action
 * and text filters, which the server does not know, become a jq filter after `tail --json`.
 */
export function commands({ origin, path, offset, type, action, text, authenticated }) {
  const url = new URL(path, origin);
  if (type) url.searchParams.set("entityTypes", type);
  const tailUrl = url.toString();
  url.searchParams.set("live", "sse");
  url.searchParams.set("offset", offset);
  const auth = authenticated ? ' -H "Authorization: Bearer $SYNCSTREAM_TOKEN"' : "";
  const curl = `curl -N${auth} ${shellQuote(url.toString())}`;
  const conditions = [];
  if (action) conditions.push(`.action == ${JSON.stringify(action)}`);
  if (text) conditions.push(`(tostring | ascii_downcase | contains(${JSON.stringify(text.toLowerCase())}))`);
  let tail = `syncstream tail ${shellQuote(tailUrl)} --offset ${shellQuote(offset)}`;
  if (conditions.length) tail += ` --json | jq -c ${shellQuote(`select(${conditions.join(" and ")})`)}`;
  return { curl, tail };
}

export class ChangeList {
  #list;
  #maxRows;
  #raw = new WeakMap(); // row -> the message's JSON as the server sent it
  #filter = { type: "", action: "", text: "" };

  constructor(list, { maxRows = 1000 } = {}) {
    this.#list = list;
    this.#maxRows = maxRows;
    list.addEventListener("click", (event) => {
      const row = event.target.closest("li");
      if (row !== null && event.target.closest("pre") === null) this.toggle(row);
    });
    list.addEventListener("keydown", (event) => {
      const row = event.target.closest("li");
      if (row !== null && (event.key === "Enter" || event.key === " ") && event.target === row) {
        event.preventDefault();
        this.toggle(row);
      }
    });
  }

  /** Rows shown (not hidden by a filter). */
  get shown() {
    let count = 0;
    for (const row of this.#list.children) if (!row.hidden) count += 1;
    return count;
  }

  add(message, { own, raw }) {
    const li = document.createElement("li");
    li.tabIndex = 0;
    li.setAttribute("aria-expanded", "false");
    li.dataset.activityId = message.activityId;
    li.dataset.action = message.action;
    li.dataset.entityType = message.entityType;
    li.dataset.entityId = message.entityId;
    if (own) li.dataset.own = "true";
    const part = (className, text, title) => {
      const span = document.createElement("span");
      span.className = className;
      span.textContent = text; // never innerHTML: names come from users
      if (title) span.title = title;
      li.append(span);
    };
    part("time", formatTime(message.createdAt), message.createdAt);
    part("id", `#${message.activityId}`);
    part(`action action-${message.action}`, message.action);
    part("type", message.entityType);
    part("entity", message.entityId);
    if (message.changedKeys) part("keys", message.changedKeys.join(", "));
    const data = message.data || {};
    const label = typeof data.name === "string" ? data.name : data.title;
    if (typeof label === "string") part("label", label);
    if (message.tx) part(own ? "tx own" : "tx", `tx ${message.tx.transactionId}@${message.tx.sourceId}`);
    this.#raw.set(li, raw);
    li.hidden = !this.#matches(li);
    this.#list.prepend(li);
    while (this.#list.childElementCount > this.#maxRows) this.#list.lastElementChild.remove();
  }

  clear() {
    this.#list.replaceChildren();
  }

  /** Shows or hides the row's full JSON. */
  toggle(row) {
    const open = row.querySelector("pre");
    if (open !== null) {
      open.remove();
      row.setAttribute("aria-expanded", "false");
      return;
    }
    const pre = document.createElement("pre");
    pre.className = "json";
    pre.textContent = JSON.stringify(JSON.parse(this.#raw.get(row)), null, 2);
    row.append(pre);
    row.setAttribute("aria-expanded", "true");
  }

  setFilter(filter) {
    this.#filter = { ...this.#filter, ...filter, text: (filter.text ?? this.#filter.text).trim().toLowerCase() };
    for (const row of this.#list.children) row.hidden = !this.#matches(row);
  }

  #matches(row) {
    const { type, action, text } = this.#filter;
    if (type && row.dataset.entityType !== type) return false;
    if (action && row.dataset.action !== action) return false;
    return !text || this.#raw.get(row).toLowerCase().includes(text);
  }
}
