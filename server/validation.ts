import { Ajv, type ErrorObject } from 'ajv';
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

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type TypeNames<S> = S extends { type: infer T } ? (T extends readonly (infer U)[] ? U : T) : never;
type ObjectOf<S> = S extends { properties: infer P }
  ? Simplify<
      { -readonly [K in keyof P as K extends RequiredOf<S> | DefaultedOf<P> ? K : never]: FromSchema<P[K]> } & {
        -readonly [K in keyof P as K extends RequiredOf<S> | DefaultedOf<P> ? never : K]?: FromSchema<P[K]>;
      }
    >
  : Record<string, unknown>;
type RequiredOf<S> = S extends { required: readonly (infer R)[] } ? R : never;
/** Properties with a `default`: ajv fills them in (`useDefaults`, query strings), so they are always there after validation. */
type DefaultedOf<P> = { [K in keyof P]: P[K] extends { default: unknown } ? K : never }[keyof P];
type ValueOf<S, Name> = Name extends 'null'
  ? null
  : Name extends 'string'
    ? string
    : Name extends 'integer' | 'number'
      ? number
      : Name extends 'boolean'
        ? boolean
        : Name extends 'array'
          ? S extends { items: infer I }
            ? FromSchema<I>[]
            : unknown[]
          : Name extends 'object'
            ? ObjectOf<S>
            : never;

/**
 * The TypeScript type of the data a JSON schema accepts, read from the schema's literal type (declare
 * schemas `as const`): `const`, `enum`, `anyOf`, `type` (a name or an array of names, so
 * `['string', 'null']` is `string | null`), `properties` with `required`, and `items`. Derived rather
 * than written beside the schema, so the two cannot drift. (ajv's own `JSONSchemaType<T>` checks the
 * other way round, but it demands `nullable: true` on every optional property and refuses it on a
 * required `T | null`, ajv#2163, so it cannot state "optional, not null" or "always sent, maybe null".)
 */
export type FromSchema<S> = S extends { const: infer C }
  ? C
  : S extends { enum: readonly (infer E)[] }
    ? E
    : S extends { anyOf: readonly (infer A)[] }
      ? FromSchema<A>
      : ValueOf<S, TypeNames<S>>;

/** The key of the type mark (it exists only in types; nothing sets it). */
declare const accepts: unique symbol;

/**
 * A JSON schema that also carries the type of the data it accepts. The mark exists for the compiler
 * only; `typedSchema` is the one way to get it, so a plain schema cannot be validated "as" any type.
 */
export type TypedSchema<T> = JsonSchema & { readonly [accepts]: T };

/** Marks a schema (its literal type, so declare its parts `as const`) with `FromSchema` of itself. */
export function typedSchema<const S extends JsonSchema>(schema: S): S & TypedSchema<FromSchema<S>> {
  return schema as S & TypedSchema<FromSchema<S>>;
}

/** Compiles JSON schemas and turns ajv's errors into field errors with JSON pointers. */
export class Validator {
  private readonly ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });

  /** Returns the data, typed by the schema, or throws a 400 listing every failing field. */
  validate<T>(schema: TypedSchema<T>, data: unknown): T {
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      throw validationError([{ field: '', pointer: '', reason: 'Request body must be a JSON object' }]);
    }
    // ajv keeps each compiled schema by object identity, so after the first request this is a lookup.
    const fn = this.ajv.compile<T>(schema);
    if (fn(data)) return data;
    throw validationError(describeErrors(fn.errors ?? [], schema));
  }
}

/**
 * Query strings, validated by their schemas as bodies are: each value is text, so ajv coerces it to
 * the schema's type (`page=2` is the integer 2, `force=true` the boolean), and fills in defaults.
 * Before the schema, the rules of every query string: a parameter given empty is absent; one given
 * twice is refused; NUL is refused (Postgres text cannot hold it: compared against a column it
 * would fail the query, a 500). Parameters the schema does not declare are ignored.
 */
const queryAjv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, coerceTypes: true, useDefaults: true });

/** The query's declared parameters, typed by the schema, or a 400 naming each failing parameter. */
export function validateQuery<T>(schema: TypedSchema<T>, query: Record<string, unknown>): T {
  const declared = Object.keys((schema.properties ?? {}) as Record<string, unknown>);
  const data: Record<string, unknown> = {};
  const refused: FieldError[] = [];
  for (const name of declared) {
    const value = query[name];
    if (value === undefined || value === '') continue;
    const reason = Array.isArray(value) ? 'must be given once' : typeof value === 'string' && value.includes('\u0000') ? 'must not contain the NUL character (%00)' : undefined;
    if (reason) refused.push({ field: name, pointer: `/${escapePointer(name)}`, reason });
    else data[name] = value;
  }
  if (refused.length > 0) throw validationError(refused);
  const fn = queryAjv.compile<T>(schema);
  if (fn(data)) return data;
  throw validationError(describeErrors(fn.errors ?? [], schema));
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
