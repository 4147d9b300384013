/**
 * The REST API's error shape, EMQX's: `{ code: "UPPER_SNAKE", message: "..." }` with the HTTP
 * status. A handler throws an ApiError; the server's error handler writes it.
 */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (code: string, message: string): ApiError => new ApiError(404, code, message);
export const badRequest = (message: string): ApiError => new ApiError(400, 'BAD_REQUEST', message);

/** The body every error answer carries. */
export interface ErrorBody {
  code: string;
  message: string;
}

/** JSON schema of ErrorBody, for the OpenAPI document. */
export const errorSchema = {
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' } },
} as const;
