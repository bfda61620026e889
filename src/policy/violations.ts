import { refusal, type Refusal } from './refusals.js';
import type { XmlViolation } from './xml-events.js';

/** An XML violation from either side as its refusal: the code names the side and the kind. */
export function violationRefusal(side: 'client' | 'server', violation: XmlViolation): Refusal {
  const detail = { detail: violation.detail };
  switch (violation.kind) {
    case 'not-well-formed':
      return refusal(side === 'client' ? 'client-not-well-formed' : 'server-not-well-formed', detail);
    case 'restricted-xml':
      return refusal(side === 'client' ? 'client-restricted-xml' : 'server-restricted-xml', detail);
    case 'bad-format':
      return refusal(side === 'client' ? 'client-bad-format' : 'server-bad-format', detail);
    case 'limit':
      return refusal(side === 'client' ? 'client-limit' : 'server-limit', detail);
  }
}
