// The official @rails/actioncable client, driven from Python: prints one JSON line per callback.
// Usage: node client.js <ws url> <origin> <pubsub_token> [account_id user_id]
// Node 20 has no global WebSocket and no window: the shims the reference lists (section 13).
const WS = require("ws");
const ActionCable = require("@rails/actioncable");

const [url, origin, token, accountId, userId] = process.argv.slice(2);
globalThis.addEventListener ??= () => {};
globalThis.removeEventListener ??= () => {};
class OriginWS extends WS {
  constructor(u, protocols) { super(u, protocols, { origin }); }
}
ActionCable.adapters.WebSocket = OriginWS;

const say = (what, data) => console.log(JSON.stringify({ what, data, at: Date.now() }));
const params = { channel: "RoomChannel", pubsub_token: token };
if (accountId) { params.account_id = Number(accountId); params.user_id = Number(userId); }

const consumer = ActionCable.createConsumer(url);
const subscription = consumer.subscriptions.create(params, {
  connected(data) { say("connected", data || {}); },
  disconnected(data) { say("disconnected", data || {}); },
  rejected() { say("rejected", {}); },
  received(data) { say("received", data); },
});
say("identifier", subscription.identifier);
process.stdin.on("data", (chunk) => {
  for (const line of chunk.toString().split("\n").filter(Boolean)) {
    if (line === "presence") subscription.perform("update_presence");
    if (line === "quit") { consumer.disconnect(); process.exit(0); }
  }
});
