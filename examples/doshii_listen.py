"""Follow a Doshii app's orders and transactions until Ctrl-C.

    RTSYNC_DOSHII_CLIENT_ID=... python examples/doshii_listen.py
"""

import os

import rtsync

client = rtsync.DoshiiClient(os.environ["RTSYNC_DOSHII_CLIENT_ID"], environment="sandbox", app_version="example/1.0")


@client.on("order_*")
@client.on("transaction_*")
def on_change(event: rtsync.Event) -> None:
    thin = event.typed  # id, status, location_id, uri: fetch the full resource from `uri`
    print(f"{event.name}: {thin.id} is {thin.status} ({thin.uri})")


@client.on("rtsync.connected")
def on_connected(event: rtsync.Event) -> None:
    if event.data["reconnect"]:
        print("reconnected: Doshii replays nothing, re-query the REST API for changes")


client.run_forever()
