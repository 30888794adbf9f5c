/** The route catalogue: every method and path the server registers, in the order the document lists them. */
import { ANALYTICS_ROUTES } from './analytics.js';
import { BILLING_ROUTES } from './billing.js';
import { INGEST_ROUTES } from './ingest.js';
import { OPERATIONS_ROUTES } from './operations.js';
import { PRIVACY_ROUTES } from './privacy.js';
import type { RouteDoc } from './types.js';

export { OPENAPI_PATH, REFERENCE_PREFIX, UNDOCUMENTED_ROUTES } from './operations.js';
export type { Access, RouteDoc } from './types.js';

export const ROUTE_CATALOGUE: readonly RouteDoc[] = [...INGEST_ROUTES, ...BILLING_ROUTES, ...PRIVACY_ROUTES, ...ANALYTICS_ROUTES, ...OPERATIONS_ROUTES];
