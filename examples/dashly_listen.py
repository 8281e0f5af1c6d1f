"""Listen to a Dashly app's conversation events until Ctrl-C.

    RTSYNC_DASHLY_TOKEN=... python examples/dashly_listen.py 100
"""

import os
import sys

import rtsync

app_id = sys.argv[1] if len(sys.argv) > 1 else "100"
client = rtsync.DashlyClient(os.environ["RTSYNC_DASHLY_TOKEN"], channels=[f"conversation_reply.{app_id}", f"conversation.{app_id}", f"conversation_typing.{app_id}"], transport="websocket")


@client.on("conversation_reply.*")
def on_reply(event: rtsync.Event) -> None:
    print(f"reply #{event.id}: {event.data}")


@client.on("rtsync.gap")
def on_gap(event: rtsync.Event) -> None:
    print(f"missed ids {event.data['missing_ids']} on {event.channel}: re-sync over the REST API")


client.on("rtsync.disconnected", lambda e: print("disconnected:", e.data["reason"]))
client.run_forever()
