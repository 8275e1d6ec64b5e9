/**
 * Which browser pages may open a socket (ALLOWED_ORIGINS). Browsers send an Origin
 * header with every WebSocket handshake and cannot forge it, so checking it stops
 * another site's page from connecting with its visitor's browser (cross-site
 * WebSocket hijacking). Non-browser clients send no Origin and are allowed: the
 * check is about browsers, and a script can claim any Origin it likes.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { OriginPolicy } from './config.js';

export function originAllowed(policy: OriginPolicy, headers: IncomingHttpHeaders): boolean {
  const origin = headers.origin;
  if (origin === undefined) return true;
  switch (policy.kind) {
    case 'any':
      return true;
    case 'list':
      return policy.origins.includes(origin);
    case 'same-host':
      return origin !== 'null' && originOf(origin) !== undefined && originOf(origin) === servedOrigin(headers);
  }
}

/**
 * The origin this request was made to: the scheme the client used (the proxy's
 * X-Forwarded-Proto, else http: a replica serves no TLS itself) and the Host header
 * as the client sent it, port included. A browser cannot set either on a WebSocket
 * handshake, and the public proxy overwrites X-Forwarded-Proto.
 */
function servedOrigin(headers: IncomingHttpHeaders): string | undefined {
  if (headers.host === undefined) return undefined;
  const forwarded = headers['x-forwarded-proto'];
  const scheme = forwarded === 'https' ? 'https' : 'http';
  return originOf(`${scheme}://${headers.host}`);
}

/** scheme://host:port with the default port left out, as browsers write an Origin; undefined for garbage. */
function originOf(url: string): string | undefined {
  try {
    const { origin } = new URL(url);
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}
