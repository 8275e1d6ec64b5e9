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
      // Hostnames only: Nginx passes Host without the port ($host), so the port cannot be compared.
      return origin !== 'null' && hostnameOf(origin) === hostnameOf(`http://${headers.host ?? ''}`);
  }
}

function hostnameOf(url: string): string | undefined {
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
}
