"""The form pipes compose in for servers without chained table CTEs (before 21.1): each
node in place of the table names that read it, the user's text otherwise as written;
and the node-local names a cluster's views read. No engine needed."""

from __future__ import annotations

from rtp.sql.compose import nest, rename_tables

NODES = {
    "mine": "SELECT product_id, price FROM events WHERE user_id = 'u1'",
    "ranked": "SELECT product_id, sum(price) AS spent FROM mine GROUP BY product_id",
}


def test_nodes_nest_in_place_of_their_names_keeping_aliases():
    body = "SELECT r.product_id FROM ranked AS r JOIN mine USING product_id WHERE spent > 1"
    assert nest(body, NODES) == (
        "SELECT r.product_id FROM (\n"
        "SELECT product_id, sum(price) AS spent FROM (\n"
        "SELECT product_id, price FROM events WHERE user_id = 'u1'\n"
        ") AS `mine` GROUP BY product_id\n"
        ") AS r JOIN (\n"
        "SELECT product_id, price FROM events WHERE user_id = 'u1'\n"
        ") AS `mine` USING product_id WHERE spent > 1"
    )


def test_a_name_that_is_no_node_and_a_subquery_in_in_are_left_or_nested():
    body = "SELECT * FROM events WHERE product_id IN (SELECT product_id FROM mine)"
    nested = nest(body, NODES)
    assert nested.startswith("SELECT * FROM events WHERE product_id IN (SELECT product_id FROM (")
    assert nested.endswith(") AS `mine`)")


def test_cluster_views_read_node_local_tables_under_the_user_names():
    sql = "SELECT e.user_id, count() AS n FROM events AS e JOIN users ON e.user_id = users.id"
    assert rename_tables(sql, {"events": "`db`.`events__local`", "users": "`db`.`u__local`"}) == (
        "SELECT e.user_id, count() AS n FROM `db`.`events__local` AS e "
        "JOIN `db`.`u__local` AS `users` ON e.user_id = users.id"
    )
