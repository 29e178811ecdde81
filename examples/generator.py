"""Simulated shoppers for the example project: live to a running rtp server, or to files.

Live: stream storefront events (and stock changes) to ``POST /v0/events`` at a chosen rate,
so the endpoints change while you watch::

    python3 examples/generator.py --url http://127.0.0.1:7181 --token $TOKEN \\
        --rate 50 --shoppers 5000 --duration 600

Kafka: the same shoppers' events produced to a topic (keyed by shopper), for the
``events`` datasource's Kafka source (``connections/storefront_bus.yaml``; docs/example.md);
the catalogue and stock changes still go to the server when a token is given::

    python3 examples/generator.py --kafka 127.0.0.1:9092 --rate 50 --duration 600

Files: write NDJSON for bulk loading (benchmarks use 5M events; this mode is fast)::

    python3 examples/generator.py --out bench/data --events 5000000 --days 7

Both modes share one model. The catalogue has ``--products`` products (2,000 by default)
in 20 categories, each with a few brands and a long-tail popularity. Each shopper has
favourite categories and brands and a propensity to buy; a session is a walk of views
(sometimes starting with a search) that mostly stays in one category, adds to cart now and
then, and sometimes ends with a purchase. Purchases take stock; the warehouse restocks
sold-out products after a while, and now and then a product sells out.

Only the standard library is needed for files; live mode needs httpx, and
confluent-kafka with ``--kafka``.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

# -- the catalogue ----------------------------------------------------------------------

# category, id prefix, product nouns, price range
CATEGORIES = [
    (
        "sunglasses",
        "sg",
        ["Aviator", "Wayfarer", "Round", "Cat Eye", "Shield", "Clubmaster"],
        (39, 249),
    ),
    ("shoes", "sh", ["Runner", "Trail Shoe", "Loafer", "Sneaker", "Boot", "Sandal"], (45, 220)),
    ("bags", "bg", ["Tote", "Backpack", "Weekender", "Crossbody", "Duffel"], (25, 320)),
    (
        "watches",
        "wt",
        ["Field Watch", "Diver", "Chronograph", "Smartwatch", "Dress Watch"],
        (60, 650),
    ),
    ("hats", "ht", ["Bucket Hat", "Cap", "Panama", "Beanie", "Fedora"], (15, 90)),
    ("jackets", "jk", ["Rain Jacket", "Puffer", "Denim Jacket", "Blazer", "Parka"], (60, 380)),
    ("jeans", "jn", ["Slim Jeans", "Straight Jeans", "Relaxed Jeans", "Cargo Jeans"], (40, 160)),
    ("shirts", "st", ["Oxford Shirt", "Linen Shirt", "Flannel", "Polo"], (20, 110)),
    ("dresses", "dr", ["Midi Dress", "Wrap Dress", "Shirt Dress", "Maxi Dress"], (35, 240)),
    ("knitwear", "kn", ["Cardigan", "Crewneck", "Turtleneck", "Cable Knit"], (35, 190)),
    ("activewear", "aw", ["Leggings", "Running Tee", "Track Jacket", "Shorts"], (18, 120)),
    ("swimwear", "sw", ["Swim Shorts", "Bikini", "Swimsuit", "Rash Guard"], (20, 110)),
    ("jewelry", "jw", ["Ring", "Necklace", "Bracelet", "Earrings"], (15, 400)),
    ("belts", "bt", ["Leather Belt", "Canvas Belt", "Braided Belt"], (15, 90)),
    ("scarves", "sc", ["Wool Scarf", "Silk Scarf", "Bandana"], (12, 120)),
    ("socks", "sk", ["Crew Socks", "Ankle Socks", "Wool Socks"], (6, 30)),
    ("wallets", "wl", ["Bifold", "Card Holder", "Zip Wallet"], (20, 160)),
    ("luggage", "lg", ["Carry-on", "Check-in Case", "Garment Bag"], (90, 520)),
    ("home", "hm", ["Candle", "Throw", "Cushion", "Vase"], (15, 150)),
    ("beauty", "by", ["Sunscreen", "Lip Balm", "Face Oil", "Fragrance"], (8, 140)),
]
BRANDS = [
    "Solaris",
    "Peakline",
    "Lumen",
    "Ardent",
    "Horo",
    "Northway",
    "Kestrel",
    "Monto",
    "Vela",
    "Briar",
    "Oakhurst",
    "Tidal",
    "Cinder",
    "Alder",
    "Juno",
    "Marlow",
    "Sable",
    "Wren",
    "Fathom",
    "Larkin",
    "Cove",
    "Everly",
    "Quill",
    "Rook",
]
ADJECTIVES = [
    "Classic",
    "Urban",
    "Coastal",
    "Alpine",
    "Retro",
    "Everyday",
    "Studio",
    "Field",
    "Harbor",
    "Summit",
    "Weekend",
    "Metro",
    "Heritage",
    "Nomad",
    "Breeze",
    "Atlas",
]
REFERRERS = (
    ["", "google", "instagram", "email", "tiktok", "newsletter", "partner"],
    [30, 30, 15, 10, 8, 5, 2],
)
EVENT_WEIGHTS = {"view": 1, "add_to_cart": 3, "purchase": 5}


@dataclass
class Product:
    product_id: str
    name: str
    category: str
    brand: str
    price: float
    fragment: str = ""  # the product's part of an event line, pre-rendered for speed

    def row(self, updated_at: str) -> dict:
        return {
            "product_id": self.product_id,
            "name": self.name,
            "category": self.category,
            "brand": self.brand,
            "price": self.price,
            "updated_at": updated_at,
        }


@dataclass
class Category:
    name: str
    products: list[Product]
    cum_weights: list[float]  # long-tail popularity, for bisect sampling
    brands: list[str]
    by_brand: dict[str, list[Product]] = field(default_factory=dict)  # popular ones

    def pick(self, rng: random.Random, brand: str | None = None) -> Product:
        if brand is not None and rng.random() < 0.35:
            same = self.by_brand.get(brand)
            if same:
                return rng.choice(same)
        i = bisect.bisect(self.cum_weights, rng.random() * self.cum_weights[-1])
        return self.products[min(i, len(self.products) - 1)]


def build_catalogue(n_products: int, seed: int) -> list[Category]:
    """``n_products`` products spread over the 20 categories, deterministic for a seed."""
    rng = random.Random(seed)
    per = max(1, n_products // len(CATEGORIES))
    out = []
    for ci, (cname, prefix, nouns, (lo, hi)) in enumerate(CATEGORIES):
        count = per + (1 if ci < n_products - per * len(CATEGORIES) else 0)
        brands = rng.sample(BRANDS, 6)
        products = []
        for n in range(count):
            brand = brands[min(int(rng.expovariate(0.6)), 5)]
            price = round(rng.uniform(lo, hi) // 1 + 0.99 * (rng.random() < 0.6), 2)
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)}"
            product = Product(f"{prefix}-{n + 1:04d}", name, cname, brand, price)
            product.fragment = (
                f'"product_id":"{product.product_id}","category":"{cname}",'
                f'"brand":"{brand}","price":{price}'
            )
            products.append(product)
        # Zipf-like popularity: a few products draw most of the views
        weights = [1 / (rank + 1) ** 0.9 for rank in range(count)]
        cum = list(itertools.accumulate(weights))
        by_brand: dict[str, list[Product]] = {}
        for p in products[:40]:
            by_brand.setdefault(p.brand, []).append(p)
        out.append(Category(cname, products, cum, brands, by_brand))
    return out


# -- shoppers and sessions --------------------------------------------------------------


@dataclass
class Shopper:
    user_id: str
    categories: list[int]  # indexes into the catalogue, favourite first
    brand: str | None
    buy_rate: float
    sessions: int = 0


def make_shoppers(n: int, catalogue: list[Category], seed: int) -> list[Shopper]:
    rng = random.Random(seed + 1)
    shoppers = []
    for i in range(n):
        favs = rng.sample(range(len(catalogue)), rng.choice((1, 2, 2, 3)))
        brand = rng.choice(catalogue[favs[0]].brands) if rng.random() < 0.6 else None
        shoppers.append(Shopper(f"u{i:06d}", favs, brand, rng.uniform(0.15, 0.6)))
    return shoppers


_SEARCH = '"product_id":"","category":"","brand":"","price":0'


@dataclass
class Session:
    """One shopping session; ``steps()`` yields (seconds since start, event_type, product
    or None for a search, search text)."""

    shopper: Shopper
    session_id: str
    referrer: str
    rng: random.Random
    catalogue: list[Category]
    cart: list[Product] = field(default_factory=list)

    def steps(self) -> Iterator[tuple[float, str, Product | None, str]]:
        rng, shopper = self.rng, self.shopper
        t = 0.0
        cat = self.catalogue[
            shopper.categories[0] if rng.random() < 0.75 else rng.choice(shopper.categories)
        ]
        if rng.random() < 0.05:  # a wander outside the shopper's tastes
            cat = rng.choice(self.catalogue)
        if rng.random() < 0.3:
            yield t, "search", None, f"{cat.name} {rng.choice(ADJECTIVES).lower()}".strip()
            t += rng.uniform(2, 10)
        length = 1 + int(rng.expovariate(1 / 6))
        for _ in range(min(length, 40)):
            if rng.random() < 0.12:  # switch to another favourite category
                cat = self.catalogue[rng.choice(shopper.categories)]
            product = cat.pick(rng, shopper.brand)
            yield t, "view", product, ""
            t += rng.uniform(3, 45)
            if rng.random() < 0.10 + 0.1 * (product.brand == shopper.brand):
                self.cart.append(product)
                yield t, "add_to_cart", product, ""
                t += rng.uniform(3, 30)
        if self.cart and rng.random() < shopper.buy_rate:
            for product in self.cart:
                yield t, "purchase", product, ""
                t += rng.uniform(0.2, 2)


class Simulation:
    def __init__(self, products: int, shoppers: int, seed: int) -> None:
        self.rng = random.Random(seed + 2)
        self.catalogue = build_catalogue(products, seed)
        self.products = [p for c in self.catalogue for p in c.products]
        self.shoppers = make_shoppers(shoppers, self.catalogue, seed)
        # a few shoppers come back much more often than the rest
        self.activity = list(
            itertools.accumulate(1 / (i + 1) ** 0.6 for i in range(len(self.shoppers)))
        )
        order = list(range(len(self.shoppers)))
        self.rng.shuffle(order)
        self.by_activity = [self.shoppers[i] for i in order]
        self.stock = {p.product_id: self._initial_stock() for p in self.products}
        self._session_counter = itertools.count(1)

    def _initial_stock(self) -> int:
        return 0 if self.rng.random() < 0.04 else self.rng.randint(3, 120)

    def new_session(self) -> Session:
        i = bisect.bisect(self.activity, self.rng.random() * self.activity[-1])
        shopper = self.by_activity[min(i, len(self.by_activity) - 1)]
        shopper.sessions += 1
        sid = f"s{self.rng.getrandbits(40):010x}{next(self._session_counter):x}"
        referrer = self.rng.choices(*REFERRERS)[0]
        return Session(shopper, sid, referrer, self.rng, self.catalogue)

    def take_stock(self, product: Product) -> int:
        left = max(0, self.stock[product.product_id] - 1)
        self.stock[product.product_id] = left
        return left


def event_line(
    stamp: str, event_type: str, session: Session, product: Product | None, query: str
) -> str:
    fragment = product.fragment if product is not None else _SEARCH
    query = json.dumps(query) if query else '""'
    return (
        f'{{"timestamp":"{stamp}","event_type":"{event_type}",'
        f'"user_id":"{session.shopper.user_id}","session_id":"{session.session_id}",'
        f'{fragment},"query":{query},"referrer":"{session.referrer}"}}\n'
    )


class Clock:
    """Epoch milliseconds -> 'YYYY-MM-DD HH:MM:SS.mmm' (UTC), fast: minutes are cached."""

    def __init__(self) -> None:
        self._minutes: dict[int, str] = {}

    def __call__(self, ms: int) -> str:
        minute, rest = divmod(ms, 60_000)
        prefix = self._minutes.get(minute)
        if prefix is None:
            if len(self._minutes) > 100_000:
                self._minutes.clear()
            prefix = time.strftime("%Y-%m-%d %H:%M:", time.gmtime(minute * 60))
            self._minutes[minute] = prefix
        sec, milli = divmod(rest, 1000)
        return f"{prefix}{sec:02d}.{milli:03d}"


# -- files ------------------------------------------------------------------------------


def write_files(sim: Simulation, out: str, events: int, days: float, end_ms: int) -> None:
    """products.ndjson, inventory.ndjson and events.ndjson under ``out``."""
    os.makedirs(out, exist_ok=True)
    clock = Clock()
    start_ms = end_ms - int(days * 86400_000)
    started = time.perf_counter()
    with open(os.path.join(out, "products.ndjson"), "w") as f:
        stamp = clock(start_ms)
        f.writelines(json.dumps(p.row(stamp)) + "\n" for p in sim.products)
    inventory = open(os.path.join(out, "inventory.ndjson"), "w")  # noqa: SIM115 (closed below)
    for p in sim.products:
        inventory.write(
            f'{{"product_id":"{p.product_id}","stock":{sim.stock[p.product_id]},'
            f'"updated_at":"{clock(start_ms)}"}}\n'
        )
    written = 0
    span = end_ms - start_ms
    rng = sim.rng
    with open(os.path.join(out, "events.ndjson"), "w", buffering=1 << 20) as f:
        buf: list[str] = []
        while written < events:
            session = sim.new_session()
            t0 = start_ms + int(rng.random() * span)
            for offset, etype, product, query in session.steps():
                ms = t0 + int(offset * 1000)
                if ms > end_ms:
                    break
                buf.append(event_line(clock(ms), etype, session, product, query))
                if etype == "purchase":
                    left = sim.take_stock(product)
                    if left == 0:  # sold out: the warehouse restocks it a few hours later
                        sim.stock[product.product_id] = rng.randint(10, 80)
                        inventory.write(
                            f'{{"product_id":"{product.product_id}","stock":0,'
                            f'"updated_at":"{clock(ms)}"}}\n'
                        )
                        inventory.write(
                            f'{{"product_id":"{product.product_id}",'
                            f'"stock":{sim.stock[product.product_id]},'
                            f'"updated_at":"{clock(ms + rng.randint(1, 8) * 3600_000)}"}}\n'
                        )
                written += 1
                if written >= events:
                    break
            if len(buf) >= 50_000:
                f.writelines(buf)
                buf.clear()
        f.writelines(buf)
    # the stock level at the end, for every product that sold something
    for pid, left in sim.stock.items():
        inventory.write(f'{{"product_id":"{pid}","stock":{left},"updated_at":"{clock(end_ms)}"}}\n')
    inventory.close()
    took = time.perf_counter() - started
    print(
        f"wrote {written:,} events, {len(sim.products):,} products to {out} "
        f"in {took:.1f}s ({written / max(took, 1e-9):,.0f} events/s)",
        file=sys.stderr,
    )


# -- live -------------------------------------------------------------------------------


def stream(
    sim: Simulation,
    url: str,
    token: str,
    rate: float,
    duration: float,
    concurrency: int,
    catalogue: bool,
    batch_seconds: float = 0.25,
    kafka: str | None = None,
    topic: str = "storefront_events",
) -> None:
    """Send events at ``rate`` per second for ``duration`` seconds (0: until interrupted):
    to ``POST /v0/events``, or produced to ``topic`` on the ``kafka`` brokers (then the
    catalogue and stock go to the server only when a token is given)."""
    import httpx

    producer = None
    if kafka:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": kafka, "linger.ms": 20})
        failures: list[str] = []

        def delivered(err, _msg) -> None:
            if err is not None:
                failures.append(str(err))

    clock = Clock()
    client = httpx.Client(
        base_url=url.rstrip("/"),
        timeout=10,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
    )

    def post(datasource: str, lines: list[str]) -> bool:
        if not lines or (producer is not None and not token):
            return True
        try:
            r = client.post(
                "/v0/events", params={"name": datasource}, content="".join(lines).encode()
            )
        except httpx.HTTPError as exc:
            print(f"! {datasource}: {exc}", file=sys.stderr)
            return False
        if r.status_code >= 300:
            print(f"! {datasource}: HTTP {r.status_code} {r.text[:200]}", file=sys.stderr)
            return False
        return True

    now_ms = int(time.time() * 1000)
    if catalogue:
        stamp = clock(now_ms)
        for i in range(0, len(sim.products), 1000):
            chunk = sim.products[i : i + 1000]
            post("products", [json.dumps(p.row(stamp)) + "\n" for p in chunk])
            post(
                "inventory",
                [
                    f'{{"product_id":"{p.product_id}",'
                    f'"stock":{sim.stock[p.product_id]},"updated_at":"{stamp}"}}\n'
                    for p in chunk
                ],
            )
        print(f"sent the catalogue: {len(sim.products):,} products", file=sys.stderr)

    rng = sim.rng
    active: list[Iterator] = []
    sessions: list[Session] = []
    sent = failed = 0
    started = time.monotonic()
    last_report = started
    budget = 0.0
    while duration <= 0 or time.monotonic() - started < duration:
        tick = time.monotonic()
        budget += rate * batch_seconds
        events: list[str] = []
        sessions_of: list[Session] = []  # the session of each event (its Kafka key)
        stock: list[str] = []
        while budget >= 1:
            while len(active) < concurrency:
                session = sim.new_session()
                sessions.append(session)
                active.append(session.steps())
            i = rng.randrange(len(active))
            step = next(active[i], None)
            if step is None:  # the session ended
                active[i] = active[-1]
                sessions[i] = sessions[-1]
                active.pop()
                sessions.pop()
                continue
            budget -= 1
            _, etype, product, query = step
            ms = int(time.time() * 1000)
            events.append(event_line(clock(ms), etype, sessions[i], product, query))
            sessions_of.append(sessions[i])
            if etype == "purchase":
                left = sim.take_stock(product)
                stock.append(
                    f'{{"product_id":"{product.product_id}","stock":{left},'
                    f'"updated_at":"{clock(ms)}"}}\n'
                )
        # the warehouse: restock a sold-out product now and then, and sell one out
        if rng.random() < batch_seconds / 5:
            empty = [pid for pid, n in sim.stock.items() if n == 0]
            if empty:
                pid = rng.choice(empty)
                sim.stock[pid] = rng.randint(10, 80)
                stock.append(
                    f'{{"product_id":"{pid}","stock":{sim.stock[pid]},'
                    f'"updated_at":"{clock(int(time.time() * 1000))}"}}\n'
                )
        if rng.random() < batch_seconds / 20:
            product = rng.choice(rng.choice(sim.catalogue).products[:10])
            sim.stock[product.product_id] = 0
            stock.append(
                f'{{"product_id":"{product.product_id}","stock":0,'
                f'"updated_at":"{clock(int(time.time() * 1000))}"}}\n'
            )
        if producer is not None:
            for line, session in zip(events, sessions_of, strict=True):
                producer.produce(
                    topic,
                    line.encode(),
                    key=session.shopper.user_id.encode(),
                    on_delivery=delivered,
                )
            producer.poll(0)
            sent += len(events)
        elif post("events", events):
            sent += len(events)
        else:
            failed += len(events)
        post("inventory", stock)
        if tick - last_report >= 5:
            elapsed = tick - started
            print(
                f"{elapsed:6.0f}s  sent {sent:,} events ({sent / elapsed:,.0f}/s), "
                f"{failed:,} failed, {len(active)} live sessions, "
                f"{sum(1 for n in sim.stock.values() if n == 0)} products sold out",
                file=sys.stderr,
            )
            last_report = tick
        time.sleep(max(0.0, batch_seconds - (time.monotonic() - tick)))
    client.close()
    if producer is not None:
        left = producer.flush(30)
        failed += len(failures) + left
        sent -= len(failures) + left
    print(f"done: sent {sent:,} events, {failed:,} failed", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:7181", help="rtp server base URL")
    parser.add_argument(
        "--token",
        default=os.environ.get("RTP_TOKEN", ""),
        help="token with DATASOURCES:APPEND (default: $RTP_TOKEN)",
    )
    parser.add_argument("--rate", type=float, default=20, help="events per second (live)")
    parser.add_argument("--shoppers", type=int, default=5000, help="how many shoppers")
    parser.add_argument(
        "--duration", type=float, default=0, help="seconds to run live; 0 runs until interrupted"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="sessions in progress at once (default: about 5 s of events)",
    )
    parser.add_argument("--products", type=int, default=2000, help="catalogue size")
    parser.add_argument(
        "--no-catalogue",
        action="store_true",
        help="live: don't send products and initial stock first",
    )
    parser.add_argument(
        "--kafka",
        metavar="BROKER",
        help="produce the events to a Kafka topic on BROKER (host:port) instead of POSTing",
    )
    parser.add_argument(
        "--topic", default="storefront_events", help="the topic for --kafka (%(default)s)"
    )
    parser.add_argument("--out", help="write NDJSON files to this folder instead of sending")
    parser.add_argument("--events", type=int, default=100_000, help="events to write (--out)")
    parser.add_argument("--days", type=float, default=7, help="days the files span (--out)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")
    args = parser.parse_args(argv)
    sim = Simulation(args.products, args.shoppers, args.seed)
    if args.out:
        write_files(sim, args.out, args.events, args.days, int(time.time() * 1000))
        return 0
    concurrency = args.concurrency or max(10, min(args.shoppers, int(args.rate * 5)))
    try:
        stream(
            sim,
            args.url,
            args.token,
            args.rate,
            args.duration,
            concurrency,
            catalogue=not args.no_catalogue and not (args.kafka and not args.token),
            kafka=args.kafka,
            topic=args.topic,
        )
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
