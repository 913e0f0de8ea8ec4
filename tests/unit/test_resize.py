"""One step larger, inside the bounds."""

from shared.resize import ResizeBounds, next_node_type, plan_resize

LADDERS = [["Standard_DS3_v2", "Standard_DS4_v2", "Standard_DS5_v2"]]
BOUNDS = ResizeBounds(LADDERS, max_workers=8, allowed_spark_conf=frozenset({"spark.sql.shuffle.partitions"}))


def test_node_type_steps_up_one_size_in_its_ladder():
    assert next_node_type("Standard_DS3_v2", LADDERS) == "Standard_DS4_v2"
    assert next_node_type("Standard_DS5_v2", LADDERS) is None
    assert next_node_type("Standard_L8s", LADDERS) is None


def test_resize_changes_node_type_and_keeps_every_other_key():
    spec = {"node_type_id": "Standard_DS3_v2", "num_workers": 2, "spark_version": "15.4.x-scala2.12",
            "custom_tags": {"team": "sales"}, "some_future_field": 1}
    plan = plan_resize(spec, BOUNDS)
    assert plan.after["node_type_id"] == "Standard_DS4_v2"
    assert plan.after["num_workers"] == 2
    assert plan.after["some_future_field"] == 1 and plan.after["custom_tags"] == {"team": "sales"}
    assert spec["node_type_id"] == "Standard_DS3_v2", "the original spec must not change"
    assert "Standard_DS3_v2 → Standard_DS4_v2" in plan.summary


def test_driver_steps_up_with_the_workers():
    plan = plan_resize({"node_type_id": "Standard_DS3_v2", "driver_node_type_id": "Standard_DS3_v2",
                        "num_workers": 2}, BOUNDS)
    assert plan.after["driver_node_type_id"] == "Standard_DS4_v2"


def test_at_the_top_of_the_ladder_workers_double_up_to_the_cap():
    plan = plan_resize({"node_type_id": "Standard_DS5_v2", "num_workers": 6}, BOUNDS)
    assert plan.after["num_workers"] == 8
    assert "workers 6 → 8" in plan.summary


def test_autoscale_max_workers_grows_within_the_cap():
    plan = plan_resize({"node_type_id": "Standard_F4", "autoscale": {"min_workers": 1, "max_workers": 3}}, BOUNDS)
    assert plan.after["autoscale"] == {"min_workers": 1, "max_workers": 6}


def test_nothing_left_to_grow_is_reported_not_planned():
    plan = plan_resize({"node_type_id": "Standard_DS5_v2", "num_workers": 8}, BOUNDS)
    assert not plan.possible
    assert "largest allowed size" in plan.summary


def test_instance_pool_clusters_only_grow_workers():
    plan = plan_resize({"instance_pool_id": "pool-1", "node_type_id": "Standard_DS3_v2", "num_workers": 2}, BOUNDS)
    assert plan.after["node_type_id"] == "Standard_DS3_v2"
    assert plan.after["num_workers"] == 4


def test_spark_conf_outside_the_allowed_keys_is_dropped():
    plan = plan_resize({"node_type_id": "Standard_DS3_v2", "num_workers": 2}, BOUNDS,
                       spark_conf={"spark.sql.shuffle.partitions": "400", "spark.executor.instances": "500"})
    assert plan.after["spark_conf"] == {"spark.sql.shuffle.partitions": "400"}


def test_single_node_cluster_is_not_given_workers():
    plan = plan_resize({"node_type_id": "Standard_DS5_v2", "num_workers": 0}, BOUNDS)
    assert not plan.possible
