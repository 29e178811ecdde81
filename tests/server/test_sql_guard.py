"""`/v0/sql` for non-admin tokens: no spelling reads beyond the token's datasources.

Hostile queries go through the HTTP door with a `DATASOURCES:READ:events` token against
the real embedded engine, which *does* read host files (`file()` takes absolute paths):
the ADMIN control case below proves each leak is real, so a refusal is what stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtp.errors import RequestError
from rtp.server.tokens import TokenStore
from rtp.sql.guard import ALLOWED_SETTINGS, guard_query
from tests.server.conftest import EVENTS, RECS
from tests.serving import rtp_serve

OTHER = "columns:\n  - {name: a, type: String}\n"

# {f}: a secret file's absolute path, {out}: a path nothing may write
HOSTILE = [
    # the scalar file(), however it is spelled
    "SELECT file('{f}') FROM events LIMIT 1",
    "SELECT FiLe('{f}')",
    "SELECT FILE('{f}')",
    "SELECT `file`('{f}')",
    "SELECT \"file\"('{f}')",
    "SELECT file /* why not */ ('{f}')",
    "SELECT\n\tfile\n(\n'{f}'\n)\nFROM events",
    "SELECT 1 -- a comment\n, file('{f}')",
    "SELECT 1 # a comment\n, file('{f}')",
    "SELECT $$x$$, file('{f}')",
    "SELECT 'a\\\\', file('{f}') -- '",
    "SELECT * FROM events WHERE user_id = '' OR file('{f}') != ''",
    "SELECT arrayMap(x -> file(x), ['{f}'])",
    "SELECT * FROM (SELECT * FROM (SELECT file('{f}') AS s))",
    "SELECT (SELECT file('{f}'))",
    "WITH (SELECT file('{f}')) AS x SELECT x",
    "WITH file('{f}') AS x SELECT x FROM events",
    "SELECT user_id FROM events UNION ALL SELECT file('{f}')",
    "SELECT count() FROM events WHERE user_id IN (SELECT file('{f}'))",
    # table functions, anywhere
    "SELECT * FROM file('{f}', 'LineAsString')",
    "SELECT * FROM FILE('{f}', 'LineAsString')",
    "SELECT * FROM events WHERE user_id IN (SELECT * FROM file('{f}', 'LineAsString'))",
    "SELECT (SELECT any(line) FROM file('{f}', 'LineAsString'))",
    "WITH x AS (SELECT * FROM file('{f}', 'LineAsString')) SELECT * FROM x",
    "SELECT * FROM events AS e JOIN file('{f}', 'LineAsString') AS f ON 1",
    "SELECT * FROM events, file('{f}', 'LineAsString')",
    "SELECT user_id FROM events UNION ALL SELECT * FROM file('{f}', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'a String')",
    "SELECT * FROM s3('http://127.0.0.1:9/x.csv', 'CSV', 'a String')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
    "SELECT * FROM remoteSecure('127.0.0.1', system.one)",
    "SELECT * FROM cluster('default', system.one)",
    "SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "SELECT * FROM jdbc('x', 'y')",
    "SELECT * FROM odbc('x', 'y')",
    "SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', 'CSV')",
    "SELECT * FROM input('a String')",
    "SELECT * FROM numbers(10)",
    "SELECT * FROM generateRandom('a String')",
    "SELECT * FROM values('a String', 'x')",
    "SELECT * FROM merge(currentDatabase(), '.*')",
    "SELECT * FROM view(SELECT * FROM other)",
    "SELECT * FROM dictionary('d')",
    # other databases and tables
    "SELECT * FROM system.one",
    "SELECT name FROM `system`.`tables`",
    "SELECT * FROM INFORMATION_SCHEMA.TABLES",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM default.events",
    "SELECT count() FROM events WHERE 1 IN system.one",
    "SELECT * FROM other",
    "SELECT * FROM events JOIN other ON 1",
    "SELECT count() FROM events WHERE user_id IN other",
    "SELECT count() FROM events WHERE user_id IN (other)",
    "SELECT notIn('x', other)",
    "WITH other AS (SELECT * FROM other) SELECT * FROM other",
    "WITH other AS (SELECT * FROM other) SELECT * FROM events, other",
    "SELECT * FROM (WITH other AS (SELECT 1) SELECT * FROM other) AS a, other",
    "WITH other AS events SELECT count() FROM events WHERE user_id IN events",
    "SELECT dictGet('d', 'a', toUInt64(1))",
    "SELECT dictGetString('d', 'a', toUInt64(1))",
    "SELECT joinGet('j', 'a', 1)",
    "SELECT hasColumnInTable(currentDatabase(), 'other', 'a')",
    # writes, settings, statements
    "SELECT * FROM events INTO OUTFILE '{out}'",
    "SELECT * FROM events INTO/**/OUTFILE '{out}'",
    "SELECT * FROM events FORMAT CSV",
    "SELECT * FROM events SETTINGS readonly = 0",
    "SELECT * FROM events SETTINGS max_execution_time = 1000, readonly = 0",
    "SELECT * FROM (SELECT * FROM events SETTINGS max_memory_usage = 0)",
    "(SELECT * FROM events) SETTINGS max_result_rows = 0",
    "SET readonly = 0",
    "SHOW TABLES",
    "DESCRIBE TABLE events",
    "EXPLAIN SELECT 1",
    "EXISTS TABLE events",
    "SELECT * FROM events; SELECT file('{f}')",
    "SELECT * FROM events WHERE !!! file('{f}')",
]


@pytest.fixture
def served(serve, tmp_path):
    s = serve({"datasources/other.yaml": OTHER})
    s.secret = f"TOPSECRET_{uuid.uuid4().hex}"
    s.secret_file = tmp_path / "secret.txt"
    s.secret_file.write_text(s.secret)
    s.out = tmp_path / "out.csv"
    s.reader = TokenStore(s.root / ".rtp" / "tokens.json").create(
        "reader", ["DATASOURCES:READ:events"]
    )
    return s


def fill(query: str, s) -> str:
    return query.replace("{f}", str(s.secret_file)).replace("{out}", str(s.out))


def test_the_list_is_long_enough():
    assert len(HOSTILE) >= 40 and len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.anyio
async def test_the_engine_reads_the_file_but_no_caller_does(served):
    # the control case: the engine itself reads host files, so the refusals below matter
    q = fill("SELECT file('{f}') AS s", served)
    assert served.rows(q) == [[served.secret]]
    # through /v0/sql, even ADMIN is refused: the engine's own parse of every caller's
    # statement (EXPLAIN AST) finds the file() call, whatever the parser above let by
    r = await served.client.get("/v0/sql", params={"q": q, "token": served.admin})
    assert r.status_code == 400 and served.secret not in r.text, r.text


@pytest.mark.anyio
@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_query_is_refused(served, query):
    q = fill(query, served)
    for send in ("get", "post"):
        if send == "get":
            r = await served.client.get("/v0/sql", params={"q": q, "token": served.reader})
        else:
            r = await served.client.post(
                "/v0/sql", json={"q": q}, headers={"Authorization": f"Bearer {served.reader}"}
            )
        assert r.status_code in (400, 403), (query, r.status_code, r.text)
        assert r.json()["code"] in ("RTP400", "RTP403"), r.text
        assert served.secret not in r.text
    assert not served.out.exists()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("query", "data"),
    [
        (
            "SELECT user_id, count() AS n FROM events GROUP BY user_id ORDER BY user_id",
            [{"user_id": "u1", "n": 3}, {"user_id": "u2", "n": 1}],
        ),
        ("WITH m AS (SELECT * FROM events) SELECT count() AS n FROM m", [{"n": 4}]),
        # a CTE named after the table: its own body reads the real table
        (
            "WITH events AS (SELECT * FROM events WHERE user_id = 'u1') "
            "SELECT count() AS n FROM events",
            [{"n": 3}],
        ),
        (
            "SELECT count() AS n FROM events WHERE user_id IN "
            "(SELECT user_id FROM events WHERE price > 50)",
            [{"n": 1}],
        ),
        (
            "WITH (SELECT max(price) FROM events) AS top "
            "SELECT user_id FROM events WHERE price = top",
            [{"user_id": "u2"}],
        ),
        (
            "SELECT * FROM (SELECT user_id AS u FROM events WHERE qty = 2 UNION ALL "
            "SELECT 'z' AS u) ORDER BY u",
            [{"u": "u1"}, {"u": "z"}],
        ),
        (
            "SELECT count() AS n FROM events AS a JOIN events AS b USING (user_id, timestamp)",
            [{"n": 4}],
        ),
        ("/* a comment */ SELECT 1 AS one;", [{"one": 1}]),
        ("SELECT lower('AB') AS s, currentDatabase() != '' AS db", [{"s": "ab", "db": True}]),
        (
            "SELECT count() AS n FROM events SETTINGS output_format_json_quote_64bit_integers = 1",
            [{"n": "4"}],
        ),
    ],
)
async def test_legitimate_queries_answer(served, query, data):
    r = await served.client.get("/v0/sql", params={"q": query, "token": served.reader})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == data


@pytest.mark.anyio
async def test_setting_refusal_names_the_setting(served):
    q = "SELECT 1 SETTINGS output_format_json_quote_64bit_integers = 1, max_threads = 64"
    r = await served.client.get("/v0/sql", params={"q": q, "token": served.reader})
    assert r.status_code == 400 and "'max_threads'" in r.json()["error"]
    r = await served.client.get("/v0/sql", params={"q": q, "token": served.admin})
    assert r.status_code == 200


@pytest.mark.anyio
async def test_engine_errors_hide_the_statement_from_non_admins(served):
    q = "SELECT nope_column FROM events WHERE user_id = 'hidden_literal'"
    r = await served.client.get("/v0/sql", params={"q": q, "token": served.reader})
    assert r.status_code == 400 and r.json()["code"] == "RTP304"
    error = r.json()["error"]
    assert "nope_column" in error and "UNKNOWN_IDENTIFIER" in error
    assert "hidden_literal" not in error and "FROM events" not in error
    r = await served.client.get("/v0/sql", params={"q": q, "token": served.admin})
    assert "hidden_literal" in r.json()["error"]  # the ADMIN sees the engine's whole text


@pytest.mark.anyio
async def test_endpoint_errors_hide_the_nodes(serve):
    pick = """
        nodes:
          - name: pick
            sql: SELECT {{ column(col, 'product_id') }} AS v FROM events
                 WHERE user_id != 'node_secret' LIMIT 1
    """
    s = serve({"pipes/pick.yaml": pick})
    r = await s.client.get("/v0/pipes/pick.json", params={"token": s.admin, "col": "nope"})
    assert r.status_code == 400 and r.json()["code"] == "RTP304"
    assert "nope" in r.json()["error"] and "node_secret" not in r.json()["error"]


# guard_query on its own: (query, admin, expected tables or the error code)
UNIT = [
    ("SELECT * FROM events", False, ("events",)),
    ("SELECT * FROM `events` AS e FINAL", False, ("events",)),
    (
        "WITH m AS (SELECT * FROM events) SELECT * FROM m JOIN products USING id",
        False,
        ("events", "products"),
    ),
    ("WITH products AS (SELECT * FROM products) SELECT * FROM products", False, ("products",)),
    (
        "WITH b AS (SELECT * FROM a), a AS (SELECT * FROM events) SELECT * FROM b",
        False,
        ("a", "events"),
    ),  # a CTE is visible after its definition only
    ("SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) AS y, x", False, ("x",)),
    ("WITH x AS (SELECT * FROM events) SELECT * FROM (SELECT * FROM x)", False, ("events",)),
    ("WITH x AS (SELECT * FROM events) SELECT (SELECT count() FROM x)", False, ("events",)),
    ("WITH x AS (SELECT 1) SELECT * FROM x UNION ALL SELECT * FROM x", False, ("x",)),
    ("WITH 1 AS products SELECT * FROM products", False, ("products",)),
    ("SELECT 1 WHERE 1 IN t", False, ("t",)),
    ("SELECT 1 WHERE 1 IN ((t))", False, ("t",)),
    ("WITH t AS (SELECT 1) SELECT 1 WHERE 1 IN t", False, ()),
    ("SELECT * FROM events ARRAY JOIN [1, 2] AS x", False, ("events",)),
    ("(SELECT 1) UNION ALL (SELECT 2)", False, ()),
    ("SELECT 'INTO OUTFILE'", False, ()),
    ("SELECT * FROM system.one", True, ()),
    ("SHOW TABLES", True, ()),
    ("EXISTS TABLE events", True, ()),
    ("SELECT file('x')", True, ()),
    ("SELECT * FROM events SETTINGS readonly = 0", True, ()),
    ("SELECT * FROM db.events", False, "RTP403"),
    ("SELECT * FROM numbers(1)", False, "RTP403"),
    ("SELECT file('x')", False, "RTP403"),
    ("SELECT dictHas('d', 1)", False, "RTP403"),
    ("SELECT globalNotIn(1, t)", False, "RTP403"),
    ("SELECT 1 IN a.b.c", False, "RTP403"),
    ("SHOW TABLES", False, "RTP403"),
    ("SELECT 1 SETTINGS max_threads = 1", False, "RTP400"),
    ("SELECT 1 SETTINGS date_time_output_format = now()", False, "RTP400"),
    ("SELECT 1 FORMAT JSON", False, "RTP400"),
    ("WITH t AS x SELECT 1 WHERE 1 IN x", False, "RTP400"),
    ("SELECT 1 AS x WHERE 1 IN x", False, "RTP400"),
    ("SELECT 1 INTO OUTFILE 'x'", True, "RTP400"),
    ("SELECT 1 INTO/**/OUTFILE 'x'", True, "RTP400"),
    ("SHOW TABLES INTO OUTFILE 'x'", True, "RTP400"),
    ("SELECT 1; SELECT 2", True, "RTP400"),
    ("EXISTS TABLE a; DROP TABLE a", True, "RTP400"),
    ("INSERT INTO events SELECT 1", True, "RTP400"),
    ("/* SELECT */ DROP TABLE events", True, "RTP400"),
    ("SET readonly = 0", True, "RTP400"),
    ("SELECT 1 +* 2", False, "RTP400"),
    ("", True, "RTP400"),
    ("SELECT " + "(" * 300 + "1" + ")" * 300, False, "RTP400"),  # not a 500
]


@pytest.mark.parametrize(("query", "admin", "expected"), UNIT)
def test_guard_query(query, admin, expected):
    if isinstance(expected, tuple):
        assert guard_query(query, admin=admin).tables == expected
    else:
        with pytest.raises(RequestError) as caught:
            guard_query(query, admin=admin)
        assert caught.value.code == expected


def test_project_database_counts_as_unqualified():
    assert guard_query("SELECT * FROM shop.events", admin=False, database="shop").tables == (
        "events",
    )


def test_allowed_settings_are_output_settings():
    assert all(
        s.startswith(("output_format_", "format_", "date_time_output")) for s in ALLOWED_SETTINGS
    )


# noise ClickHouse and sqlglot must read alike: comments, quotes, escapes, case
_PIECES = [
    "file",
    "FiLe",
    "`file`",
    '"file"',
    "(",
    ")",
    "'{f}'",
    ",",
    " ",
    "\n",
    "\t",
    "\r",
    "--",
    "#",
    "/*",
    "*/",
    "'",
    '"',
    "`",
    "\\",
    "$$",
    "1",
    "AS",
    "x",
    "(SELECT",
    "SELECT",
    "events",
    "FROM",
    "||",
    "f('{f}')",
]


@given(
    st.lists(st.sampled_from(_PIECES), max_size=12), st.lists(st.sampled_from(_PIECES), max_size=8)
)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_spelling_of_file_passes(engine, tmp_path_factory, before, after):
    # whatever the guard lets a non-admin run, the real engine must not read the file
    secret = tmp_path_factory.getbasetemp() / "guard_secret.txt"
    if not secret.exists():
        secret.write_text("HYPOSECRET")
    noise = "SELECT 1, " + "".join(before) + "file('{f}')" + "".join(after)
    query = noise.replace("{f}", str(secret))
    try:
        guard_query(query, admin=False)
    except RequestError:
        return
    try:
        out = engine.query_bytes(query, "TSV")
    except Exception:  # noqa: BLE001 - the engine refusing is fine too
        return
    assert b"HYPOSECRET" not in out, query


def test_serve_process_refuses_the_owner_file(project_factory):
    """`rtp serve` for real: a DATASOURCES:READ token can't read .rtp/owner.json (the
    control token, i.e. ADMIN); the ADMIN token still runs the same query."""
    root = project_factory({"datasources/events.yaml": EVENTS, "pipes/recs.yaml": RECS})
    root_dir = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root_dir)}
    setup = textwrap.dedent(f"""
        from pathlib import Path
        from rtp.engine.embedded import EmbeddedBackend
        from rtp.sql.ddl import create_table
        from rtp.project.load import load_project
        model, _ = load_project(Path({str(root)!r}))
        (model.root / ".rtp/data").mkdir(parents=True, exist_ok=True)
        backend = EmbeddedBackend(str(model.root / ".rtp/data"))
        for ds in model.datasources.values():
            backend.execute(create_table(ds))
        backend.close()
    """)
    subprocess.run([sys.executable, "-c", setup], env=env, check=True, timeout=60)
    reader = TokenStore(root / ".rtp" / "tokens.json").create("reader", ["DATASOURCES:READ:events"])
    with rtp_serve(root, env=env, cwd=root) as served:
        admin, base = served.admin, served.base
        control = json.loads((root / ".rtp/owner.json").read_text())["token"]
        owner = str(root / ".rtp/owner.json")
        for path in (".rtp/owner.json", owner):
            for q in (
                f"SELECT file('{path}') FROM events LIMIT 1",
                f"SELECT file/**/('{path}')",
                f"SELECT * FROM file('{path}', 'RawBLOB')",
            ):
                r = httpx.get(f"{base}/v0/sql", params={"q": q, "token": reader})
                assert r.status_code == 403, r.text
                assert control not in r.text
        r = httpx.get(
            f"{base}/v0/sql", params={"q": "SELECT count() AS n FROM events", "token": reader}
        )
        assert r.status_code == 200 and r.json()["data"] == [{"n": 0}]
        r = httpx.get(
            f"{base}/v0/sql", params={"q": f"SELECT file('{owner}') AS s", "token": admin}
        )
        # ADMIN too: the engine's own parse of a caller's statement refuses file()
        assert r.status_code == 400 and control not in r.text, r.text
