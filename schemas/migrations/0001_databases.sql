-- Two databases, so permissions can follow the privacy boundary: `billing` holds
-- identified per-account data; `analytics` holds only aggregates without identifiers.
CREATE DATABASE IF NOT EXISTS billing;
CREATE DATABASE IF NOT EXISTS analytics;
