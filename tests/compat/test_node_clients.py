"""Tinybird's TypeScript SDK (`@tinybirdco/sdk`, npm) against a real `rtp serve`, changing
only the base URL: its typed client (``new Tinybird({...})``: endpoint queries, events,
Data Sources API appends, replaces, deletes and truncates, ``/v0/sql``) and its token
client (``createClient(...).tokens.createJWT``), run by the machine's Node.js.

.ci/services/node.sh installs Node.js and the package into a cache folder and exports
``RTP_NODE_MODULES``; without them the test skips and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.serving import ROOT, rtp_serve

MODULES = Path(os.environ.get("RTP_NODE_MODULES", "/tmp/rtp-node/node_modules"))
NODE = shutil.which("node")
SDK = MODULES / "@tinybirdco/sdk/dist/index.js"

pytestmark = pytest.mark.skipif(
    NODE is None or not SDK.is_file(),
    reason="needs Node.js and @tinybirdco/sdk in RTP_NODE_MODULES (source .ci/services/node.sh)",
)

# the project, as Tinybird datafiles
PROJECT = {
    "tinyb": "{}",
    "datasources/events.datasource": """
        SCHEMA >
            `timestamp` DateTime `json:$.timestamp`,
            `user_id` String `json:$.user_id`,
            `product_id` String `json:$.product_id`,
            `price` Float64 `json:$.price`

        ENGINE "MergeTree"
        ENGINE_SORTING_KEY "user_id, timestamp"
    """,
    "endpoints/recs.pipe": """
        NODE ranked
        SQL >
            %
            SELECT product_id, sum(price) AS spent, count() AS n
            FROM events
            WHERE user_id = {{ String(user_id, required=True) }}
            GROUP BY product_id
            ORDER BY spent DESC, product_id

        TYPE endpoint
    """,
}

HEADER = "timestamp,user_id,product_id,price\n"
CSV = HEADER + "2030-01-02 00:00:00,u9,p9,1.5\n2030-01-02 00:00:01,u9,p8,2.5\n"
REPLACEMENT = HEADER + "2030-01-03 00:00:00,u7,p7,7\n"

# what a user of the SDK writes; only baseUrl points at rtp
SCRIPT = """
import { pathToFileURL } from "node:url";
const [sdkPath, base, admin, csvPath, replacementPath] = process.argv.slice(2);
const { Tinybird, createClient, createTinybirdApi, defineDatasource, defineEndpoint,
        node, t, p, engine } = await import(pathToFileURL(sdkPath).href);

const events = defineDatasource("events", {
  schema: { timestamp: t.dateTime(), user_id: t.string(), product_id: t.string(),
            price: t.float64() },
  engine: engine.mergeTree({ sortingKey: ["user_id", "timestamp"] }),
});
const recs = defineEndpoint("recs", {
  params: { user_id: p.string() },
  nodes: [node({ name: "ranked", sql: "SELECT 1" })],
  output: { product_id: t.string(), spent: t.float64(), n: t.uint64() },
});
const tb = new Tinybird({ datasources: { events }, pipes: { recs }, baseUrl: base,
                          token: admin });
const out = {};
out.ingest = await tb.events.ingest(
  { timestamp: "2030-01-01 00:00:00", user_id: "u1", product_id: "p1", price: 10 });
out.batch = await tb.events.ingestBatch([
  { timestamp: "2030-01-01 00:00:01", user_id: "u1", product_id: "p2", price: 25.5 },
  { timestamp: "2030-01-01 00:00:02", user_id: "u1", product_id: "p1", price: 10 },
  { timestamp: "2030-01-01 00:00:03", user_id: "u2", product_id: "p3", price: 99 },
]);
out.query = await tb.recs.query({ user_id: "u1" });
try {
  await tb.recs.query({});
} catch (e) {
  out.missing = { name: e.name, status: e.statusCode, message: e.message };
}
out.sql = (await tb.sql("SELECT count() AS n FROM events")).data;
out.append = await tb.events.append({ file: csvPath });
out.dry = await tb.events.delete({ deleteCondition: "user_id = 'u9'", dryRun: true });
out.deleted = await tb.events.delete({ deleteCondition: "user_id = 'u9'" });
out.after_delete = (await tb.sql("SELECT count() AS n FROM events")).data;

const client = createClient({ baseUrl: base, token: admin });
const { token: jwt } = await client.tokens.createJWT({
  name: "u1_session",
  expiresAt: new Date(Date.now() + 3600 * 1000),
  scopes: [{ type: "PIPES:READ", resource: "recs", fixed_params: { user_id: "u1" } }],
});
const asShopper = createTinybirdApi({ baseUrl: base, token: jwt });
out.jwt = (await asShopper.query("recs", { user_id: "u2" })).data;  // fixed_params win
try {
  await asShopper.sql("SELECT count() FROM events");
} catch (e) {
  out.jwt_sql = { status: e.statusCode };
}
out.replace = await tb.events.replace({ file: replacementPath });
out.after_replace = (await tb.sql("SELECT user_id, price FROM events")).data;
out.truncate = await tb.events.truncate();
out.after_truncate = (await tb.sql("SELECT count() AS n FROM events")).data;
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("node_clients")
    for rel, text in PROJECT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "rtp.cli.main", "deploy", "-p", str(root)],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    with rtp_serve(root, env=env) as serving:
        yield serving


def test_typescript_sdk_queries_ingests_and_manages_datasources(served, tmp_path):
    script = tmp_path / "client.mjs"
    script.write_text(SCRIPT, encoding="utf-8")
    (tmp_path / "more.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "snapshot.csv").write_text(REPLACEMENT, encoding="utf-8")
    # a clean environment: CI variables would switch the SDK to Tinybird "branches"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    result = subprocess.run(
        [NODE, str(script), str(SDK), served.base, served.admin]
        + [str(tmp_path / "more.csv"), str(tmp_path / "snapshot.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["ingest"] == {"successful_rows": 1, "quarantined_rows": 0}
    assert out["batch"] == {"successful_rows": 3, "quarantined_rows": 0}
    assert out["query"]["data"] == [
        {"product_id": "p2", "spent": 25.5, "n": 1},
        {"product_id": "p1", "spent": 20, "n": 2},
    ]
    assert out["query"]["rows"] == 2
    assert [m["name"] for m in out["query"]["meta"]] == ["product_id", "spent", "n"]
    assert out["missing"]["name"] == "TinybirdError" and out["missing"]["status"] == 400
    assert "user_id" in out["missing"]["message"]
    assert out["sql"] == [{"n": 4}]
    assert out["append"]["successful_rows"] == 2, out["append"]
    assert (out["dry"]["dry_run"], out["dry"]["rows_affected"]) == (True, 2)
    assert (out["deleted"]["status"], out["deleted"]["rows_affected"]) == ("done", 2)
    assert out["after_delete"] == [{"n": 4}]
    assert out["jwt"] == [
        {"product_id": "p2", "spent": 25.5, "n": 1},
        {"product_id": "p1", "spent": 20, "n": 2},
    ]
    assert out["jwt_sql"]["status"] == 403
    assert out["replace"]["successful_rows"] == 1
    assert out["after_replace"] == [{"user_id": "u7", "price": 7}]
    assert out["truncate"] == {}
    assert out["after_truncate"] == [{"n": 0}]
