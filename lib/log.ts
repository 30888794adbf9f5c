/**
 * One logger (pino) for the process. Request logs carry method, route and status only:
 * no headers (API keys), no bodies (customer data), no client addresses.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, name = 'usage-meter'): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['req.headers.authorization', '*.password', '*.secret', 'headers.authorization'], censor: '[redacted]' },
    serializers: {
      req: (req: { method?: string; url?: string; routeOptions?: { url?: string } }) => ({
        method: req.method,
        // The route pattern, not the URL: account ids in paths are personal data.
        route: req.routeOptions?.url ?? req.url?.split('?')[0],
      }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    },
  });
}
