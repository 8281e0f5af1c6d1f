"""Print a Voxsig account's new messages and typing indicators until Ctrl-C.

    RTSYNC_VOXSIG_TOKEN=... python examples/voxsig_listen.py <account_id> <user_id>
"""

import os
import sys

import rtsync

client = rtsync.VoxsigClient(os.environ["RTSYNC_VOXSIG_TOKEN"], account_id=int(sys.argv[1]), user_id=int(sys.argv[2]))


@client.on("message.created")
def on_message(event: rtsync.Event) -> None:
    message = event.typed  # rtsync.vendors.voxsig.models.Message
    print(f"#{message.conversation_id}: {message.content}")


@client.on("conversation.typing_*")
def on_typing(event: rtsync.Event) -> None:
    print(event.name, event.data.get("user", {}).get("name"))


@client.on("rtsync.connected")
def on_connected(event: rtsync.Event) -> None:
    if event.data["reconnect"]:
        print("reconnected: ActionCable keeps nothing while you are away; re-sync over the REST API")


client.run_forever()
