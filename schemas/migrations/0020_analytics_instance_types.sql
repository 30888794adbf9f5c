-- Reference data for capacity planning: the shape of each instance type, so CPU usage
-- (vCPU-seconds) can be read as utilization. Public catalogue facts, no customer data.
-- Newer rows replace older ones for the same instance type (add a migration to update).
CREATE TABLE IF NOT EXISTS analytics.instance_types
(
    instance_type LowCardinality(String),
    vcpus         UInt16,
    memory_gib    Float64,
    version       UInt32
)
ENGINE = ReplacingMergeTree(version)
ORDER BY instance_type;

INSERT INTO analytics.instance_types (instance_type, vcpus, memory_gib, version) VALUES
    ('t3.medium', 2, 4, 1),
    ('m5.large', 2, 8, 1),
    ('m5.xlarge', 4, 16, 1),
    ('c5.2xlarge', 8, 16, 1),
    ('r5.xlarge', 4, 32, 1),
    ('m5.8xlarge', 32, 128, 1),
    ('db.t3.medium', 2, 4, 1),
    ('db.r5.large', 2, 16, 1),
    ('db.r5.xlarge', 4, 32, 1),
    ('db.r5.4xlarge', 16, 128, 1);
