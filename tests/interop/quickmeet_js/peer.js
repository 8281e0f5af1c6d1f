// Widely used DDP clients, driven from Python against rtsync's local QuickMeet server.
// Usage: node peer.js <rc|ddp> <ws url> <username> <password> <room id>
// Prints one JSON line per step: connected, logged-in, ready, received, result, error.
const crypto = require("crypto");
const WS = require("ws");

const [kind, url, username, password, rid] = process.argv.slice(2);
const digest = crypto.createHash("sha256").update(password).digest("hex");
const say = (what, data) => console.log(JSON.stringify({ what, data: data === undefined ? null : data }));
const fail = (error) => { say("fatal", String(error && (error.message || error.reason || error))); process.exit(1); };

async function rocketChat() {
  // @rocket.chat/ddp-client uses the global WebSocket (none in Node 20) and sets no onerror.
  globalThis.WebSocket = class extends WS { constructor(...a) { super(...a); this.on("error", () => {}); } };
  const { DDPSDK } = require("@rocket.chat/ddp-client");
  // The SDK takes the server's base URL and appends /websocket itself.
  const sdk = await DDPSDK.createAndConnect(url.replace(/\/websocket$/, ""), { retryCount: 1, retryTime: 100 });
  say("connected");
  await sdk.account.loginWithPassword(username, digest);
  say("logged-in", { uid: sdk.account.uid });
  const received = new Promise((resolve) => sdk.stream("room-messages", rid, (message) => resolve(message)));
  await sdk.client.subscribe(`stream-room-messages`, rid, { useCollection: false, args: [] }).ready();
  say("ready");
  say("received", await received);
  say("result", await sdk.call("sendMessage", { rid, msg: "hello from @rocket.chat/ddp-client" }));
  try { await sdk.call("no-such-method"); } catch (error) { say("error", error); }
  process.exit(0);
}

function ddp() {
  const DDPClient = require("ddp");
  // maintainCollections would drop `changed` for documents never `added`: read raw messages instead.
  const client = new DDPClient({ url, maintainCollections: false, autoReconnect: false });
  const call = (method, params) => new Promise((resolve, reject) =>
    client.call(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  let seen = false;
  client.on("message", (text) => {
    const message = JSON.parse(text);
    if (!seen && message.msg === "changed" && message.collection === "stream-room-messages"
        && message.fields.eventName === rid) {
      seen = true;
      say("received", message.fields.args[0]);
      call("sendMessage", [{ rid, msg: "hello from ddp" }])
        .then((result) => say("result", result))
        .then(() => call("no-such-method", []))
        .catch((error) => { say("error", error); process.exit(0); });
    }
  });
  client.connect(async (error) => {
    if (error) return fail(error);
    say("connected");
    try {
      const result = await call("login", [{ user: { username }, password: { digest, algorithm: "sha-256" } }]);
      say("logged-in", { uid: result.id });
      client.subscribe("stream-room-messages", [rid, { useCollection: false, args: [] }], () => say("ready"));
    } catch (e) { fail(e); }
  });
}

(kind === "rc" ? rocketChat() : Promise.resolve(ddp())).catch(fail);
