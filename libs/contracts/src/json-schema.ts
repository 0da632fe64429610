import { z } from 'zod';
import { AgentEvent } from './envelope';
import { EVENT_TYPES, EventData } from './events';

/**
 * JSON Schemas generated from the zod contracts (the single source), keyed by file name. They describe
 * what producers send (zod's input side: defaults are optional).
 */
export function jsonSchemas(): Record<string, unknown> {
  const toJson = (schema: z.ZodType) =>
    z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  const schemas: Record<string, unknown> = { 'agent-event.schema.json': toJson(AgentEvent) };
  for (const type of EVENT_TYPES) schemas[`data.${type}.schema.json`] = toJson(EventData[type]);
  return schemas;
}
