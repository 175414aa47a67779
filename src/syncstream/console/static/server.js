// The console's server panel: GET /admin/streams (system admins only), refreshed every few seconds while the
// panel is open and the page visible.

const REFRESH_MS = 5000;

export class ServerPanel {
  #el;
  #timer = null;
  #open = false;

  constructor(el) {
    this.#el = el;
    el.refresh.addEventListener("click", () => this.refresh());
    document.addEventListener("visibilitychange", () => {
      if (this.#open && document.visibilityState === "visible") this.refresh();
    });
  }

  get isOpen() {
    return this.#open;
  }

  show() {
    this.#open = true;
    this.#el.panel.hidden = false;
    this.refresh();
  }

  hide() {
    this.#open = false;
    this.#el.panel.hidden = true;
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  async refresh() {
    clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#open) return;
    try {
      const response = await fetch("/admin/streams", { headers: { Accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) throw new Error(body.detail || body.title || `HTTP ${response.status}`);
      this.#render(body);
      this.#el.error.textContent = "";
    } catch (error) {
      this.#el.error.textContent = `Could not read the server's state: ${error.message}`;
    }
    if (this.#open && document.visibilityState === "visible") {
      this.#timer = setTimeout(() => this.refresh(), REFRESH_MS);
    }
  }

  #render(body) {
    const el = this.#el;
    const { health, bus, connections, process } = body;
    el.health.textContent = `${health.status} (database ${health.database}, bus ${health.bus})`;
    el.health.className = health.status === "ok" ? "ok" : "bad";
    el.bus.textContent = `${bus.url} · ${bus.status} · tailer ${bus.tailer} at activity ${bus.logPosition}`;
    el.connections.textContent =
      `${connections.open} open · since start: ${connections.opened.org} org streams, ${connections.opened.pages} pages streams`;
    el.process.textContent = `pid ${process.pid}${process.closing ? " · shutting down" : ""}`;
    const rows = body.streams.map((stream) => {
      const tr = document.createElement("tr");
      tr.dataset.stream = stream.stream;
      tr.dataset.subscribers = String(stream.subscribers);
      if (stream.slug) tr.dataset.slug = stream.slug;
      const name = document.createElement("td");
      name.textContent =
        stream.stream === "organization" ? `${stream.name ?? "?"} (${stream.slug ?? stream.organizationId})` : stream.stream;
      name.title = stream.path ?? "";
      const count = document.createElement("td");
      count.className = "n";
      count.textContent = String(stream.subscribers);
      tr.append(name, count);
      return tr;
    });
    if (body.truncated) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 2;
      td.textContent = `… and ${body.streamCount - body.streams.length} more streams`;
      tr.append(td);
      rows.push(tr);
    }
    el.streams.replaceChildren(...rows);
    el.panel.dataset.loaded = "true";
    el.panel.dataset.subscribers = String(body.subscribers);
  }
}
