"""A tiny QuickMeet.Chat bot: answers "ping" with "pong" in a room, until Ctrl-C.

    RTSYNC_QUICKMEET_PASSWORD=... python examples/quickmeet_bot.py wss://chat.example/websocket botuser GENERAL
"""

import os
import sys
import threading

import rtsync

url, username, room = sys.argv[1:4]
client = rtsync.QuickMeetClient(url=url, username=username, password=os.environ["RTSYNC_QUICKMEET_PASSWORD"])
client.subscribe_room_messages(room, wait=False)  # sent with every login, gap-filled after reconnects
replies = []


@client.on("stream-room-messages")
def on_message(event: rtsync.Event) -> None:
    message = client.room_message(event)
    if message.msg == "ping" and message.u and message.u.username != username:
        replies.append(message.rid)  # reply from the main thread: never block a callback on a call


with client:
    try:
        while True:
            while replies:
                client.send_message(replies.pop(0), "pong")
            threading.Event().wait(0.2)
    except KeyboardInterrupt:
        pass
