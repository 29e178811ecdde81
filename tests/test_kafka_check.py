"""`rtp check --connections` against a real broker (Tansu, .ci/services/kafka.sh): a
reachable broker whose topic's sampled messages decode passes; messages that don't fit a
column are reported per column with topic[partition]@offset; an unreachable broker and a
missing topic fail with their own codes, naming the connection file and the broker; the
sample commits nothing to the datasource's consumer group."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.test_kafka_connect import BROKER, create_topic, produce, run

pytestmark = pytest.mark.skipif(
    not BROKER, reason="RTP_TEST_KAFKA is unset (source .ci/services/kafka.sh for a broker)"
)


def project(factory, topic: str, broker: str):
    return factory(
        {
            "connections/bus.connection": (
                "TYPE kafka\nKAFKA_BOOTSTRAP_SERVERS "
                f'{{{{ tb_secret("CHECK_BROKER", "{broker}") }}}}\n'
            ),
            "datasources/clicks.datasource": (
                "SCHEMA >\n"
                "    `user_id` String `json:$.user.id`,\n"
                "    `n` Int64 `json:$.n`,\n"
                "    `__offset` Int64\n\n"
                "ENGINE MergeTree\nENGINE_SORTING_KEY n\n"
                f"KAFKA_CONNECTION_NAME bus\nKAFKA_TOPIC {topic}\nKAFKA_GROUP_ID g_{topic}\n"
            ),
        },
        base={"rtp.yaml": "name: kafkacheck\n"},
    )


def check(root, *extra):
    out = run(["check", "--connections", "--format", "json", *extra], root)
    return out.returncode, json.loads(out.stdout)


def test_good_messages_pass_and_nothing_is_committed(project_factory):
    topic = f"chk_{uuid.uuid4().hex[:8]}"
    root = project(project_factory, topic, BROKER)
    (root / "connections/spare.yaml").write_text(f"type: kafka\nbootstrap_servers: {BROKER}\n")
    (root / "connections/off.yaml").write_text(
        'type: kafka\nbootstrap_servers: \'{{ tb_secret("NO_SUCH_BROKER_VAR", "") }}\'\n'
    )
    create_topic(topic, 2)
    produce(topic, [{"user": {"id": f"u{i}"}, "n": i} for i in range(30)], 2)
    code, report = check(root, "--sample", "6")
    assert code == 0, report
    conn, off, spare = report["connections"]  # by connection name
    assert conn["status"] == "ok" and conn["partitions"] == 2 and conn["sampled"] == 6
    assert (off["connection"], off["status"]) == ("off", "inactive")
    assert (spare["connection"], spare["status"]) == ("spare", "ok")  # reachable, no topic
    text = run(["check", "--connections"], root).stdout
    assert f"-> clicks <- topic {topic}: 2 partition(s), 10 message(s) sampled; all decode" in text
    assert committed(f"g_{topic}", topic, 2) == [-1001, -1001]  # the group has no offsets


def committed(group: str, topic: str, partitions: int) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": BROKER, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return [tp.offset for tp in c.committed(tps, timeout=10)]
    finally:
        c.close()


def test_messages_that_do_not_fit_are_named_per_column(project_factory, tmp_path):
    topic = f"chk_{uuid.uuid4().hex[:8]}"
    root = project(project_factory, topic, BROKER)
    create_topic(topic, 1)
    produce(
        topic,
        [
            {"user": {"id": "a"}, "n": 1},
            b"{not json",
            {"user": {"id": "b"}},
            {"n": "x"},
            {"user": {"id": "c"}, "n": 3},
        ],
        1,
    )
    code, report = check(root)
    assert code == 1
    by_line = {(p["code"], p["line"]): p["message"] for p in report["problems"]}
    assert set(by_line) == {("RTP205", 2), ("RTP205", 3), ("RTP205", 9)}
    assert f"don't fit column 'user_id': {topic}[0]@3:" in by_line[("RTP205", 2)]
    assert by_line[("RTP205", 3)].startswith(f"2 of 5 sampled messages of '{topic}'")
    assert f"{topic}[0]@2: column 'n' ($.n): missing" in by_line[("RTP205", 3)]
    assert f"{topic}[0]@3: column 'n' ($.n): expected Int64" in by_line[("RTP205", 3)]
    assert f"are not JSON objects: {topic}[0]@1" in by_line[("RTP205", 9)]
    assert report["connections"][0]["failing"] == {"(value)": 1, "n": 2, "user_id": 1}
    text = run(["check", "--connections"], root)
    assert "datasources/clicks.datasource:3:5: error RTP205" in text.stdout, text.stdout


def test_an_unreachable_broker_names_the_connection_file_and_the_broker(project_factory):
    root = project(project_factory, "whatever", "127.0.0.1:1")
    code, report = check(root, "--timeout", "2")
    assert code == 1
    [problem] = report["problems"]
    assert problem["code"] == "RTP512"
    assert (problem["file"], problem["line"]) == ("connections/bus.connection", 2)
    assert "connection 'bus'" in problem["message"] and "127.0.0.1:1" in problem["message"]
    assert report["summary"]["seconds"] < 10
    text = run(["check", "--connections", "--timeout", "2"], root)
    assert "connections/bus.connection:2:25: error RTP512" in text.stdout, text.stdout


def test_a_missing_topic_is_reported_at_the_datasource_and_not_created(project_factory):
    topic = f"absent_{uuid.uuid4().hex[:8]}"
    root = project(project_factory, topic, BROKER)
    for _ in range(2):  # the first check must not have created it
        code, report = check(root)
        assert code == 1
        [problem] = report["problems"]
        assert problem["code"] == "RTP513"
        assert (problem["file"], problem["line"]) == ("datasources/clicks.datasource", 9)
        assert f"topic '{topic}' does not exist on {BROKER}" in problem["message"]


def test_without_the_option_no_broker_is_contacted(project_factory):
    root = project(project_factory, "whatever", "127.0.0.1:1")
    out = run(["check", "--format", "json"], root)
    assert out.returncode == 0 and json.loads(out.stdout)["ok"] is True
    assert "connections" not in json.loads(out.stdout)
