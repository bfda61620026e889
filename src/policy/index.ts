export { XmlEventReader, DEFAULT_XML_LIMITS, type XmlEvent, type XmlLimits, type XmlViolation } from './xml-events.js';
export { NS, is, type XmlElement } from './xml-element.js';
export { INITIAL_STATE, step, streamRoute, type StreamRouteDecision, type Action, type NegotiationContext, type NegotiationEvent, type NegotiationState, type Phase, type Side, type Step } from './negotiation.js';
export { refusal, streamErrorXml, type Refusal, type StreamCondition } from './refusal.js';
export { TlsRecordWalker, MAX_RECORD_LENGTH } from './tls-records.js';
export { Negotiator } from './negotiator.js';
