/** Domain errors of cost-cap; the problem filter maps each code to an HTTP status. */
export class InvalidRequestError extends Error {
  readonly code = 'INVALID_REQUEST';
}
export class NotFoundError extends Error {
  readonly code = 'NOT_FOUND';
}
export class ConflictError extends Error {
  readonly code = 'CONFLICT';
}
/** A request that is well-formed but cannot be acted on (an estimate for a model without a price). */
export class UnprocessableError extends Error {
  readonly code = 'UNPROCESSABLE';
}
export class UnauthenticatedError extends Error {
  readonly code = 'UNAUTHENTICATED';
}
