"""Follow a Doshii app's orders and transactions until Ctrl-C.

    RTSYNC_DOSHII_CLIENT_ID=... python examples/doshii_listen.py

Against `rtsync serve doshii`: RTSYNC_DOSHII_CLIENT_ID=demo-client-id and
`--url ws://127.0.0.1:PORT/app/socket/v3` (or RTSYNC_URL).
"""

import argparse
import os

import rtsync

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--url", default=os.environ.get("RTSYNC_URL"),
                    help="the socket URL (default: $RTSYNC_URL, else the environment's)")
parser.add_argument("--environment", default="sandbox", choices=["sandbox", "production"],
                    help="which Doshii, when no URL is given")
args = parser.parse_args()

client = rtsync.DoshiiClient(os.environ["RTSYNC_DOSHII_CLIENT_ID"], environment=args.environment, url=args.url,
                             app_version="example/1.0")


@client.on("order_*")
@client.on("transaction_*")
def on_change(event: rtsync.Event) -> None:
    thin = event.typed  # id, status, location_id, uri: fetch the full resource from `uri`
    print(f"{event.name}: {thin.id} is {thin.status} ({thin.uri})", flush=True)


@client.on("rtsync.connected")
def on_connected(event: rtsync.Event) -> None:
    print("connected", flush=True)
    if event.data["reconnect"]:
        print("reconnected: Doshii replays nothing, re-query the REST API for changes", flush=True)


client.run_forever()
