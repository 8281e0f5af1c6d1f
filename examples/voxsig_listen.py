"""Print a Voxsig account's new messages and typing indicators until Ctrl-C.

    RTSYNC_VOXSIG_TOKEN=... python examples/voxsig_listen.py --account-id 1 --user-id 7

Against `rtsync serve voxsig`: RTSYNC_VOXSIG_TOKEN=good-user-token,
`--account-id 1 --user-id 1` and its `--url` (or RTSYNC_URL).
"""

import argparse
import os

import rtsync

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--url", default=os.environ.get("RTSYNC_URL", "wss://app.voxsig.com/cable"),
                    help="the cable URL (default: $RTSYNC_URL, else Voxsig's)")
parser.add_argument("--account-id", type=int, required=True, help="the agent's account")
parser.add_argument("--user-id", type=int, required=True, help="the agent's user id")
args = parser.parse_args()

client = rtsync.VoxsigClient(os.environ["RTSYNC_VOXSIG_TOKEN"], account_id=args.account_id, user_id=args.user_id,
                             url=args.url)


@client.on("message.created")
def on_message(event: rtsync.Event) -> None:
    message = event.typed  # rtsync.vendors.voxsig.models.Message
    print(f"#{message.conversation_id}: {message.content}", flush=True)


@client.on("conversation.typing_*")
def on_typing(event: rtsync.Event) -> None:
    print(event.name, event.data.get("user", {}).get("name"), flush=True)


@client.on("rtsync.connected")
def on_connected(event: rtsync.Event) -> None:
    print("connected", flush=True)
    if event.data["reconnect"]:
        print("reconnected: ActionCable keeps nothing while you are away; re-sync over the REST API", flush=True)


client.run_forever()
