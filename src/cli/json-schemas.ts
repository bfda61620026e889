import { z } from 'zod';
import { MAP_SCHEMA } from '../onionmap/map-file.js';
import { CONFIG_SCHEMA } from './config-schema.js';

/** The JSON Schemas published in `schemas/`, made from the very schemas the daemon checks with. */
export function jsonSchemas(): Record<string, unknown> {
  return {
    'config.schema.json': { title: 'xmpp-onion-proxy configuration (--config)', ...z.toJSONSchema(CONFIG_SCHEMA) },
    'onions.schema.json': { title: 'xmpp-onion-proxy onion map (onions.json)', ...z.toJSONSchema(MAP_SCHEMA) },
  };
}
