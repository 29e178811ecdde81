"""Simulated website traffic for the marketing example, streamed to a running rtp
server's ``POST /v0/events``. Standard library only.

    python3 examples/marketing/generator.py --url http://127.0.0.1:7181 --token $TOKEN \\
        --rate 20 --duration 60

It first sends an IP-to-company dimension (a /24 network per company), one running
campaign targeting half of the companies, then page views: most from anonymous networks,
some from companies, and now and then a "buying committee" of several people of one
company on the pricing pages, which heating_accounts and crm_alerts then report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import time
import urllib.request

PAGES = ["/", "/blog/launch", "/docs/quickstart", "/pricing", "/pricing/enterprise", "/demo"]
INDUSTRIES = ["software", "finance", "healthcare", "manufacturing", "retail"]


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


def stamp(delta_days: float = 0) -> str:
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=delta_days)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7181")
    ap.add_argument("--token", required=True, help="a token that may append to the datasources")
    ap.add_argument("--rate", type=float, default=10, help="page views per second")
    ap.add_argument("--duration", type=float, default=60, help="seconds to run")
    ap.add_argument("--companies", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    companies = [
        {
            "network": f"172.{16 + i // 250}.{i % 250}",
            "domain": f"company{i}.com",
            "company": f"Company {i}",
            "industry": rnd.choice(INDUSTRIES),
            "employees": rnd.choice([20, 80, 300, 1200, 5000]),
            "updated_at": stamp(),
        }
        for i in range(args.companies)
    ]
    post(args.url, args.token, "ip_companies", companies)
    post(
        args.url,
        args.token,
        "campaigns",
        [
            {
                "campaign_id": "c_live",
                "name": "Live demo campaign",
                "priority": 1,
                "headline": "See it on your own data",
                "cta": "Start a trial",
                "hot_headline": "Your team is comparing plans: talk to us",
                "hot_cta": "Book a call",
                "starts_at": stamp(-1),
                "ends_at": stamp(30),
                "updated_at": stamp(),
            }
        ],
    )
    post(
        args.url,
        args.token,
        "campaign_accounts",
        [
            {"campaign_id": "c_live", "domain": c["domain"], "active": 1, "updated_at": stamp(-1)}
            for c in companies[::2]
        ],
    )
    end, sent, committee = time.monotonic() + args.duration, 0, []
    while time.monotonic() < end:
        if not committee and rnd.random() < 0.02:  # a buying committee starts looking
            company = rnd.choice(companies)
            committee = [(company, f"v_{rnd.randrange(10**9)}") for _ in range(rnd.randint(3, 6))]
        if committee and rnd.random() < 0.3:
            company, visitor = committee.pop()
            path = rnd.choice(["/pricing", "/pricing/enterprise"])
        elif rnd.random() < 0.3:
            company, visitor = rnd.choice(companies), f"v_{rnd.randrange(10**9)}"
            path = rnd.choice(PAGES)
        else:
            company, visitor = None, f"v_{rnd.randrange(10**9)}"
            path = rnd.choice(PAGES)
        network = company["network"] if company else f"10.{rnd.randrange(256)}.{rnd.randrange(256)}"
        post(
            args.url,
            args.token,
            "page_views",
            [
                {
                    "timestamp": stamp(),
                    "visitor_id": visitor,
                    "ip": f"{network}.{rnd.randrange(1, 255)}",
                    "path": path,
                }
            ],
        )
        sent += 1
        time.sleep(1 / args.rate)
    print(f"{sent} page views")


if __name__ == "__main__":
    main()
