import { expect } from 'chai';
import type { CategoryRow, SessionRow } from '../db/types.js';
import { ApiError } from '../server/errors.js';
import { buildSchemas, type SessionBody } from '../server/schemas.js';
import { normaliseSessionPatch, planSessionPatch, type SessionPatchContext, type SessionPatchPlan } from '../server/session-patch.js';
import { Validator } from '../server/validation.js';
import { AZURITE_DEV_CONNECTION_STRING } from '../config.js';
import { ThumbnailUrlPolicy } from '../workers/index.js';
import { testConfig } from './helpers/app.js';

/**
 * The PATCH contract (docs/api.md §3) as the pure step sees it: a stored row and a body in, the columns
 * to write and the jobs to queue out. No database: bodies go through the real JSON schema first,
 * as the route sends them.
 */

/** The caption themes the test app is configured with (config.ts states the default list). */
const THEMES = testConfig().captionThemes;
const schemas = buildSchemas(THEMES);
const validator = new Validator();
const thumbnailUrls = ThumbnailUrlPolicy.forStorage(AZURITE_DEV_CONNECTION_STRING, { thumbnails: 'thumbnails', snapshots: 'community' });

const DEFAULT_CATEGORY: CategoryRow = { id: 1, slug: 'uncategorized', name: 'Uncategorized', is_default: true, created_at: new Date('2026-01-01T00:00:00Z') };
const ART: CategoryRow = { id: 4, slug: 'art', name: 'Art', is_default: false, created_at: new Date('2026-01-01T00:00:00Z') };
const SNAPSHOT = { id: 31, status: 'ready' } as const;

/** A stored session as the transaction would lock it: automatic thumbnail, default category, unshared. */
function sessionRow(overrides: Partial<SessionRow> = {}): SessionRow {
  return {
    id: 7,
    user_id: 'user_owner',
    title: 'Evening mix',
    subreddits: ['pics', 'aww'],
    category_id: DEFAULT_CATEGORY.id,
    category_source: 'default',
    interval_min: 3,
    interval_max: 10,
    transition: 'fade',
    thumbnail: null,
    thumbnail_source: 'auto',
    thumbnail_generation: 4,
    thumbnail_blob: null,
    thumbnail_sha256: null,
    ai_prompt: null,
    caption_theme: 'joi',
    is_public: false,
    public_by_share: false,
    share_to_community: false,
    community_moderation: null,
    community_moderation_reason: null,
    community_moderated_at: null,
    is_favorite: false,
    is_manual_mode: false,
    is_imported: false,
    import_source: null,
    import_url: null,
    media_subreddits: ['pics', 'aww'],
    version: 3,
    created_at: new Date('2026-11-01T10:00:00Z'),
    updated_at: new Date('2026-11-02T10:00:00Z'),
    ...overrides,
  };
}

function plan(row: SessionRow, body: Record<string, unknown>, context: Partial<SessionPatchContext> = {}): SessionPatchPlan {
  const valid = validator.validate<SessionBody>(schemas.patchSession, body);
  return planSessionPatch(row, normaliseSessionPatch(valid, thumbnailUrls), { snapshot: null, ...context });
}

/** The 400 a body gets, with the JSON pointers it names. */
function refusal(row: SessionRow, body: Record<string, unknown>, context: Partial<SessionPatchContext> = {}): { code: string; message: string; pointers: string[] } {
  try {
    plan(row, body, context);
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    expect(e.status).to.equal(400);
    const fields = (e.details?.fields ?? []) as { pointer: string }[];
    return { code: e.code, message: e.message, pointers: fields.map((f) => f.pointer) };
  }
  throw new Error(`${JSON.stringify(body)} was accepted`);
}

const nothing: SessionPatchPlan = { changes: {}, jobs: [] };

describe('planSessionPatch: the PATCH contract without a database', () => {
  describe('a PATCH that changes nothing', () => {
    it('an empty body plans no changes and no jobs', () => {
      expect(plan(sessionRow(), {})).to.deep.equal(nothing);
    });

    it('a full form of the stored values (subreddits spelled differently) plans nothing either', () => {
      const row = sessionRow({ category_id: ART.id, category_source: 'manual', thumbnail: 'https://cdn.example.test/t.png', thumbnail_source: 'custom', ai_prompt: 'calm', share_to_community: true });
      const body = {
        title: '  Evening mix ',
        subreddits: 'R/Pics, aww, pics',
        categoryId: ART.id,
        intervalMin: 3,
        intervalMax: 10,
        transition: 'fade',
        aiPrompt: 'calm',
        captionTheme: 'joi',
        thumbnail: 'https://cdn.example.test/t.png',
        isPublic: false,
        shareToCommunity: true,
        isFavorite: false,
        isManualMode: false,
      };
      expect(plan(row, body, { category: ART, snapshot: SNAPSHOT })).to.deep.equal(nothing);
    });
  });

  describe('title', () => {
    it('is trimmed, and only a different title is a change', () => {
      expect(plan(sessionRow(), { title: '  Morning  ' })).to.deep.equal({ changes: { title: 'Morning' }, jobs: [] });
      expect(plan(sessionRow(), { title: 'Evening mix\n' })).to.deep.equal(nothing);
    });

    it('must be 1-200 characters after trimming, counted in characters, not UTF-16 units', () => {
      expect(refusal(sessionRow(), { title: '   ' }).pointers).to.deep.equal(['/title']);
      expect(refusal(sessionRow(), { title: 'x'.repeat(201) }).message).to.match(/^title must be 1-200 characters after trimming \(got 201\)$/);
      expect(plan(sessionRow(), { title: ` ${'x'.repeat(200)} ` }).changes).to.deep.equal({ title: 'x'.repeat(200) });
      expect(plan(sessionRow(), { title: '💥'.repeat(200) }).changes).to.deep.equal({ title: '💥'.repeat(200) });
    });
  });

  describe('subreddits', () => {
    it('are trimmed, lowercased, stripped of r/ and de-duplicated, from a string or an array', () => {
      for (const subreddits of [' Art, r/EarthPorn,, art ', ['/r/art', 'EARTHPORN, art']]) {
        expect(plan(sessionRow(), { subreddits }).changes.subreddits, JSON.stringify(subreddits)).to.deep.equal(['art', 'earthporn']);
      }
    });

    it('refuse a name still invalid after normalising, naming it, and more than 25', () => {
      const bad = refusal(sessionRow(), { subreddits: 'pics, no-dashes, x' });
      expect(bad.message).to.equal('subreddits has invalid subreddit names "no-dashes", "x": each must be 2-21 letters, digits or underscores');
      expect(bad.pointers).to.deep.equal(['/subreddits']);
      const many = Array.from({ length: 26 }, (_, i) => `sub${i}`).join(',');
      expect(refusal(sessionRow(), { subreddits: many }).message).to.equal('subreddits has 26 subreddits; at most 25 are allowed');
    });
  });

  describe('categoryId', () => {
    it('null resets to the default category, marked default', () => {
      const row = sessionRow({ category_id: ART.id, category_source: 'manual' });
      expect(plan(row, { categoryId: null }, { category: DEFAULT_CATEGORY })).to.deep.equal({
        changes: { category_id: DEFAULT_CATEGORY.id, category_source: 'default' },
        jobs: [],
      });
    });

    it('an id sets that category, marked manual, even when it is the default one', () => {
      expect(plan(sessionRow(), { categoryId: ART.id }, { category: ART }).changes).to.deep.equal({ category_id: ART.id, category_source: 'manual' });
      expect(plan(sessionRow(), { categoryId: DEFAULT_CATEGORY.id }, { category: DEFAULT_CATEGORY }).changes).to.deep.equal({ category_source: 'manual' });
    });

    it('an id that names no category is a 400 on categoryId', () => {
      const refused = refusal(sessionRow(), { categoryId: 999 }, { category: undefined });
      expect(refused.pointers).to.deep.equal(['/categoryId']);
      expect(refused.message).to.match(/^categoryId refers to no category \(999\)/);
    });
  });

  describe('intervals', () => {
    it('are integers 1-60 (the JSON schema), each naming its field', () => {
      for (const [field, value] of [['intervalMin', 0], ['intervalMin', 61], ['intervalMax', 1.5], ['intervalMax', '5'], ['intervalMin', null]] as const) {
        expect(refusal(sessionRow(), { [field]: value }).pointers, `${field}: ${value}`).to.deep.equal([`/${field}`]);
      }
      expect(plan(sessionRow({ interval_min: 5 }), { intervalMin: 1, intervalMax: 60 }).changes).to.deep.equal({ interval_min: 1, interval_max: 60 });
    });

    it('keep min ≤ max after merging with the stored values, naming the field sent', () => {
      expect(refusal(sessionRow(), { intervalMin: 11 }).pointers).to.deep.equal(['/intervalMin']);
      expect(refusal(sessionRow(), { intervalMax: 2 }).pointers).to.deep.equal(['/intervalMax']);
      expect(refusal(sessionRow(), { intervalMin: 9, intervalMax: 8 }).pointers).to.deep.equal(['/intervalMin', '/intervalMax']);
      expect(plan(sessionRow(), { intervalMin: 10 }).changes).to.deep.equal({ interval_min: 10 });
      // Both moved at once past the stored range: only the merged pair counts.
      expect(plan(sessionRow(), { intervalMin: 20, intervalMax: 30 }).changes).to.deep.equal({ interval_min: 20, interval_max: 30 });
    });
  });

  describe('enums', () => {
    it('transition is one of fade, slide, zoom, flip, none', () => {
      expect(plan(sessionRow(), { transition: 'zoom' }).changes).to.deep.equal({ transition: 'zoom' });
      const refused = refusal(sessionRow(), { transition: 'dissolve' });
      expect(refused.message).to.equal('transition must be one of: "fade", "slide", "zoom", "flip", "none"');
    });

    it('captionTheme is one of the configured themes', () => {
      expect(plan(sessionRow(), { captionTheme: 'cbt' }).changes).to.deep.equal({ caption_theme: 'cbt' });
      expect(refusal(sessionRow(), { captionTheme: 'gothic' }).pointers).to.deep.equal(['/captionTheme']);
    });
  });

  describe('thumbnail', () => {
    it('"" clears the thumbnail and asks for a generated one under a new generation', () => {
      const row = sessionRow({ thumbnail: 'https://cdn.example.test/mine.png', thumbnail_source: 'custom' });
      expect(plan(row, { thumbnail: '' })).to.deep.equal({
        changes: { thumbnail: null, thumbnail_source: 'auto', thumbnail_generation: 5 },
        jobs: [{ kind: 'generateThumbnail', generation: 5 }],
      });
      // Asking again (already automatic) asks for a newer one.
      expect(plan(sessionRow(), { thumbnail: '' }).jobs).to.deep.equal([{ kind: 'generateThumbnail', generation: 5 }]);
    });

    it('an http(s) URL becomes the custom thumbnail, with no job; anything else is a 400', () => {
      expect(plan(sessionRow(), { thumbnail: ' https://cdn.example.test/new.png ' })).to.deep.equal({
        changes: { thumbnail: 'https://cdn.example.test/new.png', thumbnail_source: 'custom', thumbnail_generation: 5 },
        jobs: [],
      });
      for (const thumbnail of ['ftp://cdn.example.test/a.png', 'javascript:alert(1)', 'not a url']) {
        expect(refusal(sessionRow(), { thumbnail }).pointers, thumbnail).to.deep.equal(['/thumbnail']);
      }
    });

    it('a custom thumbnail survives a subreddit change: media sync only', () => {
      const row = sessionRow({ thumbnail: 'https://cdn.example.test/mine.png', thumbnail_source: 'custom' });
      expect(plan(row, { subreddits: 'space' })).to.deep.equal({ changes: { subreddits: ['space'] }, jobs: [{ kind: 'syncMedia' }] });
    });

    it('an automatic thumbnail is regenerated when the subreddits change', () => {
      const row = sessionRow({ thumbnail: 'https://blobs.example.test/thumbnails/sessions/7/4.webp' });
      expect(plan(row, { subreddits: 'space' })).to.deep.equal({
        changes: { subreddits: ['space'], thumbnail_source: 'auto', thumbnail_generation: 5 },
        jobs: [{ kind: 'syncMedia' }, { kind: 'generateThumbnail', generation: 5 }],
      });
    });

    it('no thumbnail is generated when the subreddits are emptied, or when a URL comes with them', () => {
      expect(plan(sessionRow(), { subreddits: ' , ' })).to.deep.equal({ changes: { subreddits: [] }, jobs: [{ kind: 'syncMedia' }] });
      expect(plan(sessionRow(), { subreddits: 'space', thumbnail: 'https://cdn.example.test/s.png' })).to.deep.equal({
        changes: { subreddits: ['space'], thumbnail: 'https://cdn.example.test/s.png', thumbnail_source: 'custom', thumbnail_generation: 5 },
        jobs: [{ kind: 'syncMedia' }],
      });
    });
  });

  describe('imported sessions', () => {
    const imported = (): SessionRow => sessionRow({ is_imported: true, import_source: 'reference', ai_prompt: 'as imported', caption_theme: 'beta' });

    for (const [field, value] of [
      ['subreddits', 'other'],
      ['subreddits', 'aww, pics'],
      ['aiPrompt', 'new prompt'],
      ['aiPrompt', null],
      ['captionTheme', 'joi'],
    ] as const) {
      it(`refuse a change of ${field} to ${JSON.stringify(value)}, naming the field`, () => {
        const refused = refusal(imported(), { title: 'Also changed', [field]: value });
        expect(refused).to.deep.equal({ code: 'IMPORTED_SESSION_LOCKED', message: `${field} cannot be changed on an imported session`, pointers: [`/${field}`] });
      });
    }

    it('name every locked field changed at once', () => {
      expect(refusal(imported(), { subreddits: 'x_y', aiPrompt: 'p', captionTheme: 'cbt' }).message).to.equal('subreddits, aiPrompt, captionTheme cannot be changed on an imported session');
    });

    it('accept the stored values sent back (subreddits compared after normalising) and apply the rest', () => {
      const body = { title: 'Renamed', subreddits: 'r/PICS, Aww', aiPrompt: 'as imported', captionTheme: 'beta', isFavorite: true };
      expect(plan(imported(), body)).to.deep.equal({ changes: { title: 'Renamed', is_favorite: true }, jobs: [] });
    });
  });

  describe('shareToCommunity', () => {
    it('true creates a snapshot', () => {
      expect(plan(sessionRow(), { shareToCommunity: true })).to.deep.equal({ changes: { share_to_community: true }, jobs: [{ kind: 'createSnapshot' }] });
    });

    it('false removes the snapshot', () => {
      expect(plan(sessionRow({ share_to_community: true }), { shareToCommunity: false }, { snapshot: SNAPSHOT })).to.deep.equal({
        changes: { share_to_community: false },
        jobs: [{ kind: 'removeSnapshot' }],
      });
    });

    it('repeating the current value changes nothing', () => {
      expect(plan(sessionRow({ share_to_community: true }), { shareToCommunity: true }, { snapshot: SNAPSHOT })).to.deep.equal(nothing);
      expect(plan(sessionRow(), { shareToCommunity: false })).to.deep.equal(nothing);
    });
  });

  describe('the other fields', () => {
    it('aiPrompt (string or null) and the flags change only when different', () => {
      expect(plan(sessionRow(), { aiPrompt: 'slow and warm', isPublic: true, isFavorite: false, isManualMode: true }).changes).to.deep.equal({
        ai_prompt: 'slow and warm',
        is_public: true,
        is_manual_mode: true,
      });
      expect(plan(sessionRow({ ai_prompt: 'x' }), { aiPrompt: null }).changes).to.deep.equal({ ai_prompt: null });
      expect(refusal(sessionRow(), { aiPrompt: 'p'.repeat(2001) }).pointers).to.deep.equal(['/aiPrompt']);
    });
  });
});
