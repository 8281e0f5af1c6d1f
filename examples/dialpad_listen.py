"""Print Dialpad calls as they ring, connect and hang up, until Ctrl-C.

    RTSYNC_DIALPAD_API_KEY=... python examples/dialpad_listen.py

Creates a websocket endpoint and a call subscription on first use; the URL's
one-hour token is refreshed by the client without losing events. Against
`rtsync serve dialpad`: RTSYNC_DIALPAD_API_KEY=demo-key and `--url` (or RTSYNC_URL).
"""

import argparse
import os

import rtsync

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--url", default=os.environ.get("RTSYNC_URL", "https://dialpad.com"),
                    help="the REST API base (default: $RTSYNC_URL, else Dialpad's)")
args = parser.parse_args()

client = rtsync.DialpadClient(os.environ["RTSYNC_DIALPAD_API_KEY"], url=args.url,
                              secret=os.environ.get("RTSYNC_DIALPAD_SECRET"))
client.create_subscription("call", call_states=["ringing", "connected", "hangup"])
print("listening on websocket", client.websocket_id, flush=True)


@client.on("call.*")
def on_call(event: rtsync.Event) -> None:
    call = event.typed
    print(f"{event.name:16} {call.external_number} -> {call.internal_number}", flush=True)


@client.on("rtsync.connected")
def on_connected(event: rtsync.Event) -> None:
    print("connected", flush=True)
    if event.data["gap_possible"]:
        print("missed events possible: check the call log", flush=True)


client.run_forever()
