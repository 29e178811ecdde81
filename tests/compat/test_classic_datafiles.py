"""Classic Tinybird datafiles as the corpus's held-out projects wrote them
(ecommerce-order-status, inventory-management), through `rtp check`, `rtp deploy`,
`rtp sql` and `rtp test`:

- a Kafka datasource whose connection lived in the Classic workspace (no ``.connection``
  file): a warning, and the table is made; Tinybird's Kafka meta columns (``__timestamp``
  ...) exist even when the SCHEMA leaves them out, so keys and pipes can use them;
  ``KAFKA_KEY_AVRO_DESERIALIZATION``, a Classic datasource setting, is read (and warned
  about, as the other Kafka format settings);
- a column name with a dot (`p.id`, what a view's ``SELECT p.id`` produces).
"""

from __future__ import annotations

import json

KAFKA_DS = """
    SCHEMA >
        `__value` String,
        `orderID` Int32 `json:$.orderID`,
        `city` String `json:$.shippingLocation.city`

    ENGINE "MergeTree"
    ENGINE_PARTITION_KEY "toYYYYMM(__timestamp)"
    ENGINE_SORTING_KEY "__timestamp"

    KAFKA_CONNECTION_NAME 'transactions'
    KAFKA_TOPIC 'orders'
    KAFKA_GROUP_ID 'orders_1'
    KAFKA_AUTO_OFFSET_RESET 'earliest'
    KAFKA_STORE_RAW_VALUE 'False'
    KAFKA_KEY_AVRO_DESERIALIZATION ''
"""


def test_kafka_datasource_of_a_classic_workspace(project_factory, cli):
    root = project_factory(
        {
            "datasources/transactions.datasource": KAFKA_DS,
            "pipes/latest_orders.pipe": """
                NODE ep
                SQL >
                    SELECT orderID, city, __timestamp, __partition, __offset, __key
                    FROM transactions
                    ORDER BY __timestamp DESC
                    LIMIT 10
            """,
        },
        base=None,
    )
    check = cli("check", "-p", root)
    assert check.exit_code == 0, check.stdout
    out = check.stdout
    assert "transactions.datasource:10:23: warning RTP108 connection 'transactions'" in out, out
    assert "is not in the project: the datasource is created but not fed from Kafka" in out
    assert "warning RTP107 KAFKA_KEY_AVRO_DESERIALIZATION" in out
    deploy = cli("deploy", "-p", root)
    assert deploy.exit_code == 0, deploy.stdout
    described = cli("sql", "-p", root, "-f", "json", "DESCRIBE TABLE transactions")
    assert described.exit_code == 0, described.stdout
    columns = [(c["name"], c["type"]) for c in json.loads(described.stdout)["data"]]
    assert columns == [
        ("__value", "String"),
        ("orderID", "Int32"),
        ("city", "String"),
        ("__topic", "LowCardinality(String)"),
        ("__partition", "Int16"),
        ("__offset", "Int64"),
        ("__timestamp", "DateTime"),
        ("__key", "String"),
    ]


def test_a_kafka_connection_in_a_yaml_datasource_must_exist(project_factory, cli):
    """rtp's own YAML datasources never relied on a workspace: still an error there."""
    root = project_factory(
        {
            "datasources/clicks.yaml": """
                columns:
                  - {name: n, type: Int64}
                kafka: {connection: nowhere, topic: clicks}
            """
        }
    )
    check = cli("check", "-p", root)
    assert check.exit_code == 1
    assert "error RTP108 unknown connection 'nowhere'" in check.stdout, check.stdout


def test_column_names_with_dots(project_factory, cli):
    root = project_factory(
        {
            "tinyb": "{}",
            "datasources/products.datasource": """
                SCHEMA >
                    `id` String `json:$.id`,
                    `name` String `json:$.name`
            """,
            "datasources/stock.datasource": """
                SCHEMA >
                    `id` String `json:$.id`,
                    `qty` Int64 `json:$.qty`
            """,
            # what Tinybird wrote for a view's `SELECT p.id ...` (inventory-management)
            "datasources/current_stock.datasource": """
                SCHEMA >
                    `p.id` String,
                    `name` String,
                    `total` Int64

                ENGINE "SummingMergeTree"
                ENGINE_SORTING_KEY "name"
            """,
            "materializations/current_stock_mv.pipe": """
                NODE mv
                SQL >
                    SELECT p.id, p.name, s.qty AS total
                    FROM stock s JOIN products p ON p.id = s.id

                TYPE materialized
                DATASOURCE current_stock
            """,
            "endpoints/stock_by_product.pipe": """
                NODE ep
                SQL >
                    SELECT `p.id` AS id, name, sum(total) AS total
                    FROM current_stock GROUP BY id, name ORDER BY id

                TYPE endpoint
            """,
            "fixtures/products.ndjson": '{"id": "a", "name": "apple"}\n'
            '{"id": "b", "name": "pear"}\n',
            "fixtures/stock.ndjson": '{"id": "a", "qty": 3}\n{"id": "b", "qty": 1}\n'
            '{"id": "a", "qty": 2}\n',
            "tests/stock_by_product.yaml": """
                - name: summed_per_product
                  parameters: ''
                  expected_result: |
                    {"id":"a","name":"apple","total":"5"}
                    {"id":"b","name":"pear","total":"1"}
            """,
        },
        base=None,
    )
    check = cli("check", "-p", root)
    assert check.exit_code == 0, check.stdout
    result = cli("test", "-p", root)
    out = result.stdout + (result.stderr or "")
    assert result.exit_code == 0, out
    assert out.strip().splitlines()[-1] == "1 passed, 0 failed", out


def test_a_column_name_still_cannot_be_anything(project_factory, cli):
    root = project_factory(
        {
            "tinyb": "{}",
            "datasources/bad.datasource": """
                SCHEMA >
                    `p..id` String,
                    `ok` String
            """,
        },
        base=None,
    )
    check = cli("check", "-p", root)
    assert check.exit_code == 1
    assert "bad.datasource:2:5: error RTP106 column name 'p..id' is not a valid name" in (
        check.stdout
    ), check.stdout
