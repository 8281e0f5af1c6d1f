"""A cron job (every minute): fetch what was published since the last run, exactly once.

    * * * * *  RTSYNC_DASHLY_TOKEN=... python /path/to/examples/dashly_cron.py

The first run records the server's time and returns nothing; every later run
gets everything published since the previous one, even if a run was skipped
(within the server's 30 min / 100 message store; beyond that, rtsync.gap).
Try it against `rtsync serve dashly` with `--url` (or RTSYNC_URL).
"""

import argparse
import os

import rtsync

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--url", default=os.environ.get("RTSYNC_URL", "https://realtime-services.dashly.app"),
                    help="the push stream's base URL (default: $RTSYNC_URL, else Dashly's)")
parser.add_argument("--checkpoint", default=os.path.expanduser("~/.cache/dashly-cron.cursor"),
                    help="where the cursor lives between runs")
args = parser.parse_args()

client = rtsync.DashlyClient(os.environ["RTSYNC_DASHLY_TOKEN"], channels=["conversation_reply.100", "conversation.100"],
                             url=args.url, checkpoint=rtsync.FileCheckpoint(args.checkpoint))
client.on("conversation_reply.*", lambda e: print("reply:", e.data))
client.on("rtsync.gap", lambda e: print("could not recover", e.data["missing"], "on", e.data["channel"]))
events = client.poll_once()  # callbacks already ran; the list is there for scripts that prefer a loop
print(f"{len(events)} event(s) since the last run")
