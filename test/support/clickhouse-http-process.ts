/**
 * TEST SUPPORT ONLY. Runs test/support/clickhouse-http.ts's endpoint in a process of its
 * own over one data directory, so that several pipeline processes can share one engine
 * (as they share a server) while the test's own event loop stays free for the producer.
 * Prints `{"url": …}` on its first line; closes the engine on SIGTERM.
 *
 *   node --import tsx test/support/clickhouse-http-process.ts <data-dir>
 */
import { startClickHouseHttp } from './clickhouse-http.js';

const dataDir = process.argv[2];
if (!dataDir) {
  console.error('usage: clickhouse-http-process.ts <data-dir>');
  process.exit(2);
}
const endpoint = await startClickHouseHttp(dataDir);
process.stdout.write(`${JSON.stringify({ url: endpoint.url })}\n`);
process.once('SIGTERM', () => {
  endpoint.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
