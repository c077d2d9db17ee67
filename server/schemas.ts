import type { JsonSchema } from './validation.js';

export const TRANSITIONS = ['fade', 'slide', 'zoom', 'flip', 'none'] as const;
export const MAX_SUBREDDITS = 25;

const bool = { type: 'boolean' };
const interval = { type: 'integer', minimum: 1, maximum: 60 };

/** The editable session fields; the create and PATCH bodies are built from this one list. */
function sessionFields(captionThemes: string[]): Record<string, JsonSchema> {
  return {
    title: { type: 'string', maxLength: 1000, description: 'must be a string of 1-200 characters' },
    subreddits: {
      description: 'must be a comma-separated string or an array of subreddit names',
      anyOf: [
        { type: 'string', maxLength: 5000 },
        { type: 'array', maxItems: 200, items: { type: 'string', maxLength: 200 } },
      ],
    },
    categoryId: { type: ['integer', 'null'], minimum: 1, maximum: 2147483647 },
    intervalMin: interval,
    intervalMax: interval,
    transition: { type: 'string', enum: [...TRANSITIONS] },
    aiPrompt: { type: ['string', 'null'], maxLength: 2000 },
    captionTheme: { type: 'string', enum: captionThemes },
    thumbnail: {
      description: 'must be an http(s) URL, or "" to generate one from the subreddits',
      type: 'string',
      maxLength: 2048,
    },
    isPublic: bool,
    shareToCommunity: bool,
    isFavorite: bool,
    isManualMode: bool,
  };
}

export interface SessionBody {
  title?: string;
  subreddits?: string | string[];
  categoryId?: number | null;
  intervalMin?: number;
  intervalMax?: number;
  transition?: (typeof TRANSITIONS)[number];
  aiPrompt?: string | null;
  captionTheme?: string;
  thumbnail?: string;
  isPublic?: boolean;
  shareToCommunity?: boolean;
  isFavorite?: boolean;
  isManualMode?: boolean;
}

export type CreateSessionBody = SessionBody & Required<Pick<SessionBody, 'title' | 'subreddits'>>;

export interface Schemas {
  createSession: JsonSchema;
  patchSession: JsonSchema;
  register: JsonSchema;
  login: JsonSchema;
  session: JsonSchema;
  sessionDetail: JsonSchema;
  user: JsonSchema;
  category: JsonSchema;
  error: JsonSchema;
}

const nullable = (type: string, extra: JsonSchema = {}): JsonSchema => ({ type: [type, 'null'], ...extra });
const dateTime = { type: 'string', format: 'date-time' };

/** Request schemas (ajv validates them) and response schemas (documentation only), from one place. */
export function buildSchemas(captionThemes: string[]): Schemas {
  const fields = sessionFields(captionThemes);
  return {
    patchSession: { type: 'object', additionalProperties: false, properties: fields },
    createSession: { type: 'object', additionalProperties: false, required: ['title', 'subreddits'], properties: fields },
    register: {
      type: 'object',
      additionalProperties: false,
      required: ['email', 'password'],
      properties: {
        email: { type: 'string', maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+$' },
        password: { type: 'string', minLength: 8, maxLength: 1024 },
        firstName: nullable('string', { maxLength: 100 }),
        lastName: nullable('string', { maxLength: 100 }),
      },
    },
    login: {
      type: 'object',
      additionalProperties: false,
      required: ['email', 'password'],
      properties: { email: { type: 'string', maxLength: 254 }, password: { type: 'string', maxLength: 1024 } },
    },
    session: {
      type: 'object',
      properties: {
        id: { type: 'integer' },
        title: { type: 'string' },
        userId: { type: 'string' },
        subreddits: { type: 'array', items: { type: 'string' } },
        categoryId: { type: 'integer' },
        categorySource: { type: 'string', enum: ['default', 'manual'] },
        intervalMin: { type: 'integer' },
        intervalMax: { type: 'integer' },
        transition: { type: 'string', enum: [...TRANSITIONS] },
        thumbnail: nullable('string'),
        aiPrompt: nullable('string'),
        captionTheme: { type: 'string' },
        isPublic: bool,
        shareToCommunity: bool,
        isFavorite: bool,
        isManualMode: bool,
        isImported: bool,
        importSource: nullable('string'),
        createdAt: dateTime,
        updatedAt: dateTime,
        communitySnapshot: nullable('object', {
          properties: { id: { type: 'integer' }, status: { type: 'string', enum: ['pending', 'copying', 'ready', 'failed'] } },
        }),
      },
    },
    sessionDetail: {
      type: 'object',
      properties: {
        session: { $ref: '#/components/schemas/Session' },
        media: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              id: { type: 'integer' },
              mediaUrl: { type: 'string' },
              thumbnail: nullable('string'),
              caption: nullable('string'),
              type: { type: 'string', enum: ['image', 'gif', 'video'] },
              redditPostId: nullable('string'),
              redditPostUrl: nullable('string'),
              subreddit: nullable('string'),
              order: { type: 'integer' },
            },
          },
        },
      },
    },
    user: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        email: { type: 'string' },
        firstName: nullable('string'),
        lastName: nullable('string'),
        profileImageUrl: nullable('string'),
        role: { type: 'string', enum: ['user', 'admin', 'super_admin'] },
        createdAt: dateTime,
        updatedAt: dateTime,
      },
    },
    category: {
      type: 'object',
      properties: { id: { type: 'integer' }, slug: { type: 'string' }, name: { type: 'string' }, isDefault: bool },
    },
    error: {
      type: 'object',
      required: ['error', 'message', 'code'],
      properties: {
        error: { type: 'string' },
        message: { type: 'string' },
        code: { type: 'string' },
        details: { type: 'object' },
      },
    },
  };
}
