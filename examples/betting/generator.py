"""Simulated punters for examples/betting: page views, bet slips opened and abandoned,
and bets, for one or more brands, posted to a running rtp server's ``/v0/events``.

    python3 examples/betting/generator.py --url http://127.0.0.1:7181 --token $TOKEN \\
        --brands acme,zeus --rate 20 --duration 60

The token needs ``DATASOURCES:APPEND:activity`` (in production each brand's backend
sends its own users' events). ``--print`` writes the events to stdout instead. Standard
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

EVENTS = {  # sport -> league -> events
    "football": {
        "premier-league": ["e_ars_che", "e_liv_mci", "e_tot_new"],
        "la-liga": ["e_rma_bar", "e_atm_sev"],
        "serie-a": ["e_int_mil", "e_juv_rom"],
    },
    "tennis": {"atp": ["e_djo_alc", "e_sin_med"], "wta": ["e_swi_gau"]},
    "basketball": {"nba": ["e_lal_bos", "e_gsw_den"]},
    "racing": {"ascot": ["e_asc_1", "e_asc_2", "e_asc_3"]},
}


def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class Punter:
    """A user with a favourite sport, a usual stake and a propensity to bet; new users
    hesitate more (they open slips and close them)."""

    def __init__(self, brand: str, n: int):
        self.brand, self.id = brand, f"u_{n}"
        self.sport = random.choice(list(EVENTS))
        self.stake = random.choice([2, 5, 5, 10, 10, 20, 50])
        self.bet_chance = random.uniform(0.05, 0.6)
        self.slip = None

    def act(self, now: dt.datetime) -> dict:
        sport = self.sport if random.random() < 0.8 else random.choice(list(EVENTS))
        league = random.choice(list(EVENTS[sport]))
        event = random.choice(EVENTS[sport][league])
        row = {
            "timestamp": _ts(now),
            "brand": self.brand,
            "user_id": self.id,
            "sport": sport,
            "league": league,
            "event_id": event,
        }
        if self.slip:  # a slip is open: bet or walk away
            row.update(self.slip)
            row["action"] = "bet_placed" if random.random() < self.bet_chance else "slip_abandon"
            self.slip = None
        elif random.random() < 0.3:
            self.slip = {
                "sport": sport,
                "league": league,
                "event_id": event,
                "odds": round(random.uniform(1.2, 6.0), 2),
                "stake": self.stake,
            }
            row.update(self.slip, action="slip_open")
        else:
            row["action"] = "page_view"
        return row


def post(url: str, token: str, rows: list[dict]) -> None:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    req = urllib.request.Request(
        f"{url}/v0/events?name=activity&wait=true",
        data=body,
        headers={"Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer = json.load(resp)
    if answer.get("quarantined_rows"):
        print(f"{answer['quarantined_rows']} rows quarantined", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7181")
    ap.add_argument("--token", default="")
    ap.add_argument("--brands", default="acme,zeus")
    ap.add_argument("--users", type=int, default=100, help="users per brand")
    ap.add_argument("--rate", type=float, default=10, help="events per second")
    ap.add_argument("--duration", type=float, default=30, help="seconds")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--print", action="store_true", help="write NDJSON to stdout, no server")
    args = ap.parse_args(argv)
    random.seed(args.seed)
    punters = [Punter(b, n) for b in args.brands.split(",") for n in range(args.users)]
    end = time.monotonic() + args.duration
    sent = 0
    while time.monotonic() < end:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = [random.choice(punters).act(now) for _ in range(max(1, int(args.rate)))]
        if args.print:
            print("\n".join(json.dumps(r) for r in rows))
        else:
            post(args.url, args.token, rows)
        sent += len(rows)
        time.sleep(1)
    print(f"sent {sent} events", file=sys.stderr)


if __name__ == "__main__":
    main()
