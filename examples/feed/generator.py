"""Simulated readers for the feed example: posts, follows, reactions and dwell time,
streamed to a running rtp server's ``POST /v0/events``, or produced to Kafka topics
(``feed_posts``, ``feed_follows``, ``feed_reactions``, ``feed_dwell``) that the
datasources consume when ``RTP_KAFKA_BROKER`` names the broker (connections/feed_bus.yaml).

    python3 examples/feed/generator.py --url http://127.0.0.1:7181 --token $TOKEN \\
        --rate 20 --duration 60
    python3 examples/feed/generator.py --kafka 127.0.0.1:9092 --actions 5000 --rate 0

HTTP needs only the standard library; ``--kafka`` needs confluent-kafka.

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


class Http:
    """Rows to ``POST /v0/events?name=<datasource>``."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def send(self, name: str, rows: list[dict]) -> None:
        body = "\n".join(json.dumps(r) for r in rows).encode()
        req = urllib.request.Request(
            f"{self.url}/v0/events?name={name}",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def close(self) -> None:
        pass


class Kafka:
    """Rows to the topic ``<prefix><datasource>``, one JSON message each, keyed by the
    reader (the post for posts) so a reader's events keep their order in one partition."""

    def __init__(self, broker: str, prefix: str) -> None:
        from confluent_kafka import Producer

        self.prefix, self.failed = prefix, 0
        self.producer = Producer({"bootstrap.servers": broker, "linger.ms": 5, "acks": "all"})

    def _delivered(self, err, _msg) -> None:
        if err is not None:
            self.failed += 1

    def send(self, name: str, rows: list[dict]) -> None:
        for r in rows:
            key = str(r.get("user_id") or r.get("post_id") or "")
            while True:
                try:
                    self.producer.produce(
                        self.prefix + name,
                        json.dumps(r).encode(),
                        key.encode(),
                        on_delivery=self._delivered,
                    )
                    break
                except BufferError:  # the local queue is full: let it drain
                    self.producer.poll(0.1)
            self.producer.poll(0)

    def close(self) -> None:
        left = self.producer.flush(60)
        if left or self.failed:
            raise SystemExit(f"kafka: {self.failed} messages failed, {left} not delivered")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7181")
    ap.add_argument("--token", help="a token that may append to the datasources (HTTP)")
    ap.add_argument("--kafka", metavar="BROKER", help="produce to Kafka at BROKER instead of HTTP")
    ap.add_argument("--topic-prefix", default="feed_", help="topics are <prefix><datasource>")
    ap.add_argument(
        "--rate", type=float, default=10, help="reader actions per second (0: no pause)"
    )
    ap.add_argument("--duration", type=float, default=60, help="seconds to run")
    ap.add_argument("--actions", type=int, help="stop after this many reader actions")
    ap.add_argument("--readers", type=int, default=50)
    ap.add_argument("--authors", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not args.kafka and not args.token:
        ap.error("--token is required unless --kafka is given")
    sink = Kafka(args.kafka, args.topic_prefix) if args.kafka else Http(args.url, args.token)
    sent = {"posts": 0, "follows": 0, "dwell": 0, "reactions": 0}

    def post(name: str, rows: list[dict]) -> None:
        sink.send(name, rows)
        sent[name] += len(rows)

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

    post("posts", [new_post() for _ in range(30)])
    post(
        "follows",
        [
            {"user_id": u, "author_id": a, "active": 1, "updated_at": now()}
            for u in readers
            for a in rnd.sample(list(authors), 3)
        ],
    )
    end, actions = time.monotonic() + args.duration, 0
    while time.monotonic() < end and (args.actions is None or actions < args.actions):
        if rnd.random() < 0.05:
            post("posts", [new_post()])
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
        post("dwell", [{**event, "dwell_ms": dwell_ms}])
        if rnd.random() < (0.3 if liked else 0.05):
            kind = rnd.choices(*KINDS)[0] if liked else "hide"
            post("reactions", [{**event, "kind": kind}])
        actions += 1
        if args.rate > 0:
            time.sleep(1 / args.rate)
    sink.close()
    print(f"{actions} reader actions, {len(posts)} posts")
    print(" ".join(f"{name}={n}" for name, n in sent.items()))


if __name__ == "__main__":
    main()
