"""Simulated readers for the feed example: posts, follows, reactions and dwell time,
streamed to a running rtp server's ``POST /v0/events``. Standard library only.

    python3 examples/feed/generator.py --url http://127.0.0.1:7181 --token $TOKEN \\
        --rate 20 --duration 60

Authors post now and then; readers follow a few authors and have favourite topics; each
step a reader is shown a post (a dwell row: long when it matches their taste), and
sometimes likes, comments, shares or hides it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import time
import urllib.request

TOPICS = ["tech", "food", "travel", "sports", "music", "science"]
KINDS = (["like", "comment", "share", "hide"], [60, 20, 10, 10])


def post(url: str, token: str, name: str, rows: list[dict]) -> None:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    req = urllib.request.Request(
        f"{url}/v0/events?name={name}",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7181")
    ap.add_argument("--token", required=True, help="a token that may append to the datasources")
    ap.add_argument("--rate", type=float, default=10, help="reader actions per second")
    ap.add_argument("--duration", type=float, default=60, help="seconds to run")
    ap.add_argument("--readers", type=int, default=50)
    ap.add_argument("--authors", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    authors = {f"a_{i:03d}": rnd.sample(TOPICS, 2) for i in range(args.authors)}
    readers = {f"u_{i:04d}": rnd.sample(TOPICS, 2) for i in range(args.readers)}
    posts: list[dict] = []

    def new_post() -> dict:
        author = rnd.choice(list(authors))
        row = {
            "post_id": f"g{len(posts):06d}_{rnd.randrange(10**6):06d}",
            "author_id": author,
            "topic": rnd.choice(authors[author]),
            "title": f"Post {len(posts)}",
            "created_at": now(),
        }
        posts.append(row)
        return row

    post(args.url, args.token, "posts", [new_post() for _ in range(30)])
    post(
        args.url,
        args.token,
        "follows",
        [
            {"user_id": u, "author_id": a, "active": 1, "updated_at": now()}
            for u in readers
            for a in rnd.sample(list(authors), 3)
        ],
    )
    end, sent = time.monotonic() + args.duration, 0
    while time.monotonic() < end:
        if rnd.random() < 0.05:
            post(args.url, args.token, "posts", [new_post()])
        user = rnd.choice(list(readers))
        shown = rnd.choice(posts[-200:])
        liked = shown["topic"] in readers[user]
        event = {
            "timestamp": now(),
            "user_id": user,
            "post_id": shown["post_id"],
            "author_id": shown["author_id"],
            "topic": shown["topic"],
        }
        dwell_ms = int(rnd.expovariate(1 / (15000 if liked else 2500)))
        post(args.url, args.token, "dwell", [{**event, "dwell_ms": dwell_ms}])
        if rnd.random() < (0.3 if liked else 0.05):
            kind = rnd.choices(*KINDS)[0] if liked else "hide"
            post(args.url, args.token, "reactions", [{**event, "kind": kind}])
        sent += 1
        time.sleep(1 / args.rate)
    print(f"{sent} reader actions, {len(posts)} posts")


if __name__ == "__main__":
    main()
