#!/bin/bash
# The ClickHouse container's entrypoint in docker-compose.yml: checks the two password
# secrets, then hands over to the image's own /entrypoint.sh (clickhouse/clickhouse-server
# 26.7.3.19), which
#   - reads CLICKHOUSE_PASSWORD_FILE itself and writes users.d/default-user.xml: it removes
#     user `default` and creates CLICKHOUSE_USER with that password, profile and quota
#     `default`, and access_management 0 (CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT is not set):
#     the pipeline's user cannot create users or grant anything;
#   - but does not check that the file exists: a missing file would silently mean an
#     empty password. Hence the checks here.
# users.d/analytics-reader.xml takes its password from the environment (from_env), so the
# analytics secret is read into CLICKHOUSE_ANALYTICS_PASSWORD here; it lives only in this
# process tree, never in the container's configuration (`docker inspect`).
set -euo pipefail

for name in CLICKHOUSE_PASSWORD_FILE CLICKHOUSE_ANALYTICS_PASSWORD_FILE; do
    file="${!name:-}"
    if [[ -z "$file" || ! -s "$file" ]]; then
        echo "$0: $name must name a non-empty secret file (got '${file}')" >&2
        exit 1
    fi
done
if [[ -n "${CLICKHOUSE_PASSWORD:-}" || -n "${CLICKHOUSE_ANALYTICS_PASSWORD:-}" ]]; then
    echo "$0: give the passwords as secret files (*_FILE), not in the environment" >&2
    exit 1
fi

CLICKHOUSE_ANALYTICS_PASSWORD="$(cat "$CLICKHOUSE_ANALYTICS_PASSWORD_FILE")"
export CLICKHOUSE_ANALYTICS_PASSWORD
exec /entrypoint.sh "$@"
