"""A cron job (every minute): fetch what was published since the last run, exactly once.

    * * * * *  RTSYNC_DASHLY_TOKEN=... python /path/to/examples/dashly_cron.py

The first run records the server's time and returns nothing; every later run
gets everything published since the previous one, even if a run was skipped
(within the server's 30 min / 100 message store; beyond that, rtsync.gap).
"""

import os

import rtsync

client = rtsync.DashlyClient(os.environ["RTSYNC_DASHLY_TOKEN"], channels=["conversation_reply.100", "conversation.100"], checkpoint=rtsync.FileCheckpoint(os.path.expanduser("~/.cache/dashly-cron.cursor")))
client.on("conversation_reply.*", lambda e: print("reply:", e.data))
client.on("rtsync.gap", lambda e: print("could not recover ids", e.data["missing_ids"]))
for event in client.poll_once():
    pass  # callbacks already ran; the list is there for scripts that prefer a loop
