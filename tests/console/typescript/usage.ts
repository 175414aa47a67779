// Compiled (never run) by test_client_types.py with `tsc --strict`: the declarations in client.d.ts must be
// valid, and must type the uses shown in docs/clients.md.
import {
  LiveCollection,
  SyncStream,
  SyncStreamError,
  compareIds,
  type CollectionChange,
  type StreamMessage,
  type StreamState,
} from "../../../src/syncstream/browser/js/client.js";

interface Attachment {
  id: string;
  name: string;
  projectId: string | null;
}

const stream = new SyncStream({
  url: "/organizations/acme/sync/stream",
  cursor: localStorage.getItem("cursor:acme"),
  token: () => sessionStorage.getItem("token"),
  entityTypes: ["attachment"],
  backoff: { initialMs: 250, maxMs: 5000 },
});
const offCursor: () => void = stream.on("cursor", (cursor: string | null) => {
  if (cursor === null) localStorage.removeItem("cursor:acme");
  else localStorage.setItem("cursor:acme", cursor);
});
stream.on("state", (state: StreamState, detail) => {
  const delay: number | undefined = detail.retryInMs;
  console.log(state, detail.reason, delay);
});
stream.on("change", (message: StreamMessage, { own, raw }) => {
  const newer: boolean = compareIds(message.activityId, "41") > 0;
  console.log(newer, own, raw.length, message.tx?.sourceId);
});
stream.on("error", (error: SyncStreamError) => console.log(error.type, error.status, error.problem.detail));
stream.on("mustRefetch", (error) => console.log(error.problem.title));

const attachments = new LiveCollection<Attachment>(stream, { entityType: "attachment" });
attachments.subscribe(({ changes, collection }) => {
  for (const change of changes as CollectionChange<Attachment>[]) {
    if (change.type === "reset") continue;
    if (change.type === "delete") console.log("gone", change.previous.name);
    else console.log(change.type, change.value.name, change.own, change.message.activityId);
  }
  const names: string[] = collection.toArray().map((a) => a.name);
  console.log(names, collection.size, collection.isReady);
});
for (const [id, attachment] of attachments) console.log(id, attachment.projectId);

async function write(): Promise<void> {
  stream.start();
  await attachments.ready();
  const tx = stream.newTx("name");
  await fetch("/organizations/acme/attachments", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "plan.pdf", tx }),
  });
  const echoed: StreamMessage = await stream.waitForTx(tx.transactionId, { signal: new AbortController().signal });
  console.log(stream.isOwn(echoed), stream.cursor, stream.sourceId, stream.connections);
  attachments.close();
  offCursor();
  stream.stop().reconnect();
}
void write();
