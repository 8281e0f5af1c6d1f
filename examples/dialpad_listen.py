"""Print Dialpad calls as they ring, connect and hang up, until Ctrl-C.

    RTSYNC_DIALPAD_API_KEY=... python examples/dialpad_listen.py

Creates a websocket endpoint and a call subscription on first use; the URL's
one-hour token is refreshed by the client without losing events.
"""

import os

import rtsync

client = rtsync.DialpadClient(os.environ["RTSYNC_DIALPAD_API_KEY"], secret=os.environ.get("RTSYNC_DIALPAD_SECRET"))
client.create_subscription("call", call_states=["ringing", "connected", "hangup"])
print("listening on websocket", client.websocket_id)


@client.on("call.*")
def on_call(event: rtsync.Event) -> None:
    call = event.typed
    print(f"{event.name:16} {call.external_number} -> {call.internal_number}")


client.on("rtsync.connected", lambda e: print("missed events possible: check the call log") if e.data["gap_possible"] else None)
client.run_forever()
