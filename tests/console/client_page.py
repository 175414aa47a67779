"""Driving the browser client (``/client.js``) in a real Chromium page.

The page is any same-origin document of the server under test (``/health`` will do): the module is loaded
with a dynamic ``import()``, a :class:`SyncStream` is made from the options a test gives, and everything it
reports is recorded in ``window.rec``. Each record also bumps ``document.body.dataset.tick``, so that
:meth:`Page.wait_for` (a ``MutationObserver``) re-checks its condition on every event, with no polling.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from console.cdp import Page

#: Where the restart tests append their "server back → live" figures, in ms (for docs/clients.md).
MEASURE_VARIABLE = "SYNCSTREAM_MEASURE_RECONNECT"


def append_line(path: Path, line: str) -> None:
    with path.open("a") as out:
        out.write(line)


HARNESS = """
(async (options, collect) => {
  const client = await import("/client.js");
  window.client = client;
  let tick = 0;
  const bump = () => { document.body.dataset.tick = String(++tick); };
  const rec = window.rec = {
    changes: [], states: [], caughtUp: [], cursors: [], refetches: [], errors: [], batches: 0,
    collection: [], collectionChanges: [], liveAt: [],
  };
  const stream = window.stream = new client.SyncStream(options);
  stream.on("change", (m, info) => { rec.changes.push({id: m.activityId, entityId: m.entityId,
    action: m.action, own: info.own, raw: info.raw}); bump(); });
  stream.on("state", (state, detail) => {
    rec.states.push({state, reason: detail.reason ?? null, retryInMs: detail.retryInMs ?? null,
      connections: stream.connections, at: Date.now()});
    if (state === "live") rec.liveAt.push(Date.now());
    bump();
  });
  stream.on("caughtUp", (cursor) => { rec.caughtUp.push(cursor); bump(); });
  stream.on("cursor", (cursor) => { rec.cursors.push(cursor); });
  stream.on("mustRefetch", (error) => { rec.refetches.push(error.type); bump(); });
  stream.on("error", (error) => { rec.errors.push({type: error.type, status: error.status}); bump(); });
  stream.on("batch", () => { rec.batches += 1; });
  if (collect) {
    const collection = window.collection = new client.LiveCollection(stream, collect);
    collection.subscribe(({changes}) => {
      rec.collectionChanges.push(changes.map((c) => c.type === "reset" ? {type: "reset"}
        : {type: c.type, id: c.id, own: c.own}));
      rec.collection = [...collection.entries()];
      bump();
    });
  }
  stream.start();
  return true;
})
"""


async def open_client(
    page: Page, base_url: str, options: dict[str, Any], collect: dict[str, Any] | None = None
) -> None:
    """Load the client in a page of ``base_url`` and start a stream with ``options``."""
    await page.navigate(f"{base_url}/health")
    await page.evaluate(f"{HARNESS}({json.dumps(options)}, {json.dumps(collect)})")


async def record(page: Page) -> dict[str, Any]:
    rec: dict[str, Any] = await page.evaluate("window.rec")
    return rec


def states(rec: dict[str, Any]) -> list[str]:
    return [entry["state"] for entry in rec["states"]]
