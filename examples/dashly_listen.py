"""Listen to a Dashly app's conversation events until Ctrl-C.

    RTSYNC_DASHLY_TOKEN=... python examples/dashly_listen.py --app-id 100

Against a local server (`rtsync serve dashly` prints its URL and token):

    RTSYNC_DASHLY_TOKEN=demo-token python examples/dashly_listen.py --url http://127.0.0.1:PORT
"""

import argparse
import os

import rtsync

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--url", default=os.environ.get("RTSYNC_URL", "https://realtime-services.dashly.app"),
                    help="the push stream's base URL (default: $RTSYNC_URL, else Dashly's)")
parser.add_argument("--app-id", default="100", help="whose conversations (default 100)")
args = parser.parse_args()

channels = [f"conversation_reply.{args.app_id}", f"conversation.{args.app_id}", f"conversation_typing.{args.app_id}"]
client = rtsync.DashlyClient(os.environ["RTSYNC_DASHLY_TOKEN"], channels=channels, url=args.url)


@client.on("conversation_reply.*")
def on_reply(event: rtsync.Event) -> None:
    print(f"reply #{event.id}: {event.data}", flush=True)


@client.on("rtsync.gap")
def on_gap(event: rtsync.Event) -> None:
    print(f"missed {event.data['missing']} on {event.data['channel']} ({event.data['reason']}): "
          "re-sync over the REST API", flush=True)


client.on("rtsync.connected", lambda e: print("connected", flush=True))
client.on("rtsync.disconnected", lambda e: print("disconnected:", e.data["reason"], flush=True))
client.run_forever()  # Ctrl-C stops cleanly and returns
