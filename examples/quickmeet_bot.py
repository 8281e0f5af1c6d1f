"""A tiny QuickMeet.Chat bot: answers "ping" with "pong" in a room, until Ctrl-C.

    RTSYNC_QUICKMEET_PASSWORD=... python examples/quickmeet_bot.py --url wss://chat.example/websocket \\
        --username botuser --room GENERAL

Against `rtsync serve quickmeet`: RTSYNC_QUICKMEET_PASSWORD=alice-password,
`--username alice` and its `--url` (or RTSYNC_URL); then
`rtsync publish quickmeet --url ... --room GENERAL ping`.
"""

import argparse
import os
import queue

import rtsync

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--url", default=os.environ.get("RTSYNC_URL"), required="RTSYNC_URL" not in os.environ,
                    help="the server's DDP endpoint, wss://<host>/websocket (default: $RTSYNC_URL)")
parser.add_argument("--username", required=True, help="the bot's user")
parser.add_argument("--room", default="GENERAL", help="room id to serve (default GENERAL)")
args = parser.parse_args()

client = rtsync.QuickMeetClient(args.username, os.environ["RTSYNC_QUICKMEET_PASSWORD"], url=args.url)
client.subscribe_room_messages(args.room, wait=False)  # sent with every login, gap-filled after reconnects
pings: "queue.Queue[str]" = queue.Queue()


@client.on("stream-room-messages")
def on_message(event: rtsync.Event) -> None:
    message = client.room_message(event)
    if message.msg == "ping" and message.u and message.u.username != args.username:
        pings.put(message.rid)  # answer from the main thread: a callback never blocks on a method call


client.on("rtsync.connected", lambda e: print("connected", flush=True))
with client:
    try:
        while True:
            try:
                room = pings.get(timeout=0.5)
            except queue.Empty:
                continue
            client.send_message(room, "pong")
            print("pong sent to", room, flush=True)
    except KeyboardInterrupt:
        pass
