"""Simulated travellers for examples/travel: searches, hotel page views, bookings and now
and then a repriced hotel, posted to a running rtp server's ``/v0/events``.

    python3 examples/travel/generator.py --url http://127.0.0.1:7181 --token $TOKEN \\
        --rate 20 --duration 60

The token needs ``DATASOURCES:APPEND`` on searches, hotel_views, bookings and hotels
(``rtp dev`` prints one). ``--print`` writes the events to stdout instead. Standard
library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
import urllib.request

DESTINATIONS = {
    "lisbon": ["alfama", "baixa", "belem", "chiado", "graca"],
    "porto": ["ribeira", "foz", "bolhao", "boavista"],
    "madeira": ["funchal", "calheta", "canico"],
}
REFERRERS = ["google", "kayak", "trivago", "booking_ads", "direct", "newsletter"]


def hotels(now: dt.datetime) -> list[dict]:
    rows = []
    for dest, areas in DESTINATIONS.items():
        for area in areas:
            rows.append(
                {
                    "hotel_id": f"h_{area}",
                    "name": f"{area.title()} Hotel",
                    "destination": dest,
                    "stars": random.randint(3, 5),
                    "rooms": random.choice([5, 8, 10, 20, 40]),
                    "price_per_night": random.randint(70, 300),
                    "updated_at": _ts(now),
                }
            )
    return rows


def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class Visitor:
    def __init__(self, n: int, catalogue: list[dict]):
        self.id = f"v_{n:05d}"
        self.referrer = random.choice(REFERRERS)
        self.dest = random.choice(list(DESTINATIONS))
        self.hotels = [h for h in catalogue if h["destination"] == self.dest]
        today = dt.date.today()
        self.checkin = today + dt.timedelta(days=random.randint(7, 90))
        self.checkout = self.checkin + dt.timedelta(days=random.randint(1, 7))
        self.guests = random.choice([1, 2, 2, 2, 3, 4])
        self.session = f"s_{self.id}_{random.randint(0, 999)}"

    def act(self, now: dt.datetime) -> tuple[str, dict]:
        """One step: mostly searches and views; a visitor who looked a while may book."""
        roll = random.random()
        base = {"timestamp": _ts(now), "visitor_id": self.id, "referrer": self.referrer}
        if roll < 0.35:
            return "searches", {
                **base,
                "session_id": self.session,
                "destination": self.dest,
                "checkin": str(self.checkin),
                "checkout": str(self.checkout),
                "guests": self.guests,
            }
        hotel = random.choice(self.hotels)
        if roll < 0.93:
            return "hotel_views", {
                **base,
                "session_id": self.session,
                "hotel_id": hotel["hotel_id"],
            }
        nights = (self.checkout - self.checkin).days
        return "bookings", {
            **base,
            "booking_id": f"b_{random.getrandbits(48):x}",
            "hotel_id": hotel["hotel_id"],
            "destination": self.dest,
            "checkin": str(self.checkin),
            "checkout": str(self.checkout),
            "guests": self.guests,
            "amount": nights * hotel["price_per_night"],
        }


def post(url: str, token: str, name: str, rows: list[dict]) -> None:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    req = urllib.request.Request(
        f"{url}/v0/events?name={name}&wait=true",
        data=body,
        headers={"Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer = json.load(resp)
    if answer.get("quarantined_rows"):
        print(f"{name}: {answer['quarantined_rows']} rows quarantined", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7181")
    ap.add_argument("--token", default="")
    ap.add_argument("--rate", type=float, default=10, help="events per second")
    ap.add_argument("--duration", type=float, default=30, help="seconds")
    ap.add_argument("--visitors", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--print", action="store_true", help="write NDJSON to stdout, no server")
    args = ap.parse_args(argv)
    random.seed(args.seed)

    def send(name: str, rows: list[dict]) -> None:
        if args.print:
            for r in rows:
                print(json.dumps({"datasource": name, **r}))
        else:
            post(args.url, args.token, name, rows)

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    catalogue = hotels(now)
    send("hotels", catalogue)
    visitors = [Visitor(n, catalogue) for n in range(args.visitors)]
    end = time.monotonic() + args.duration
    sent = 0
    while time.monotonic() < end:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        batch: dict[str, list[dict]] = {}
        for _ in range(max(1, int(args.rate))):
            name, row = random.choice(visitors).act(now)
            batch.setdefault(name, []).append(row)
        if random.random() < 0.1:  # the revenue team reprices a hotel: a newer dimension row
            hotel = dict(random.choice(catalogue))
            hotel["price_per_night"] = round(hotel["price_per_night"] * random.uniform(0.85, 1.15))
            hotel["updated_at"] = _ts(now)
            batch.setdefault("hotels", []).append(hotel)
        for name, rows in batch.items():
            send(name, rows)
            sent += len(rows)
        time.sleep(1)
    print(f"sent {sent} events", file=sys.stderr)


if __name__ == "__main__":
    main()
