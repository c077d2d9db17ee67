import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { validationError, type FieldError } from './errors.js';

/** Fields a client may read but never write; named as such when sent. */
const READ_ONLY_FIELDS = new Set([
  'id',
  'userId',
  'createdAt',
  'updatedAt',
  'isImported',
  'importSource',
  'categorySource',
  'communitySnapshot',
  'version',
  'media',
]);

export type JsonSchema = Record<string, unknown>;

/** Compiles JSON schemas once and turns ajv's errors into field errors with JSON pointers. */
export class Validator {
  private readonly ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  private readonly compiled = new Map<JsonSchema, ValidateFunction>();

  /** Returns the data typed as T, or throws a 400 listing every failing field. */
  validate<T>(schema: JsonSchema, data: unknown): T {
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      throw validationError([{ field: '', pointer: '', reason: 'Request body must be a JSON object' }]);
    }
    let fn = this.compiled.get(schema);
    if (!fn) {
      fn = this.ajv.compile(schema);
      this.compiled.set(schema, fn);
    }
    if (fn(data)) return data as T;
    throw validationError(describeErrors(fn.errors ?? [], schema));
  }
}

function fieldOf(pointer: string): string {
  const first = pointer.split('/')[1] ?? '';
  return first.replace(/~1/g, '/').replace(/~0/g, '~');
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function describeErrors(errors: ErrorObject[], schema: JsonSchema): FieldError[] {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const byPointer = new Map<string, FieldError>();
  for (const e of errors) {
    let pointer = e.instancePath;
    let reason: string;
    if (e.keyword === 'additionalProperties') {
      const name = String((e.params as { additionalProperty: string }).additionalProperty);
      pointer = `${pointer}/${escapePointer(name)}`;
      reason = READ_ONLY_FIELDS.has(name) && pointer === `/${escapePointer(name)}` ? 'is read-only' : 'is not an allowed field';
    } else if (e.keyword === 'required') {
      const name = String((e.params as { missingProperty: string }).missingProperty);
      pointer = `${pointer}/${escapePointer(name)}`;
      reason = 'is required';
    } else if (e.keyword === 'enum') {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      reason = `must be one of: ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
    } else {
      // A field described by alternatives (anyOf) gets its schema's description, not each branch's
      // complaint, once and at the field itself (a branch's error may point inside it, e.g. /subreddits/0).
      const field = fieldOf(pointer);
      const described = properties[field]?.description;
      if (described && (e.keyword === 'anyOf' || e.schemaPath.includes('/anyOf/'))) {
        pointer = `/${escapePointer(field)}`;
        reason = String(described);
      } else {
        reason = e.message ?? 'is invalid';
      }
    }
    const existing = byPointer.get(pointer);
    // Keep one reason per field; an anyOf summary replaces the branch errors that precede it.
    if (!existing || e.keyword === 'anyOf') byPointer.set(pointer, { field: pointer.split('/').slice(1).join('.'), pointer, reason });
  }
  return [...byPointer.values()];
}
