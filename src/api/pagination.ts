/**
 * EMQX's page-based pagination: `page` (from 1) and `limit` (1..10000, default 100) in the
 * query; `meta: { page, limit, count, hasnext }` in the answer.
 */
export interface PageQuery {
  page?: number;
  limit?: number;
}

export interface Meta {
  page: number;
  limit: number;
  count: number;
  hasnext: boolean;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10000;

/** Query-string schema properties every paged endpoint takes. */
export const pageProperties = {
  page: { type: 'integer', minimum: 1, default: 1, description: 'Page number, from 1.' },
  limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT, description: 'Items per page.' },
} as const;

export const metaSchema = {
  type: 'object',
  required: ['page', 'limit', 'count', 'hasnext'],
  properties: {
    page: { type: 'integer' },
    limit: { type: 'integer' },
    count: { type: 'integer' },
    hasnext: { type: 'boolean' },
  },
} as const;

/** The page of `items` the query asks for, with its meta. */
export function paginate<T>(items: readonly T[], q: PageQuery): { data: T[]; meta: Meta } {
  const page = q.page ?? 1;
  const limit = q.limit ?? DEFAULT_LIMIT;
  const start = (page - 1) * limit;
  const data = items.slice(start, start + limit);
  return { data, meta: { page, limit, count: items.length, hasnext: start + limit < items.length } };
}
