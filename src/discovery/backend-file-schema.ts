/**
 * The JSON Schema of a backend file (see `backend-file.ts` for the format and its rules). Data only: the
 * validator bulb runs is generated from it ahead of time (`npm run gen:validators`), so this module must not
 * import that validator or anything that does.
 */
import { DURATION_PATTERN, HEALTH_PATH_PATTERN, HEALTH_STATUS_PATTERN } from '../values.js';

/** A backend file's `health` block: the `--health-*` settings for this backend only (see docs/health.md). */
export const HEALTH_BLOCK_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  description: 'Active health checks for this backend; every field defaults to the matching --health-* setting.',
  properties: {
    mode: { type: 'string', enum: ['http', 'tcp', 'grpc', 'off'], description: 'http, tcp, grpc or off; http when a path is given, grpc when a service is.' },
    service: { type: 'string', maxLength: 1024, description: 'Service name a gRPC check asks grpc.health.v1.Health/Check about; "" (the default) asks about the whole server.' },
    path: { type: 'string', pattern: HEALTH_PATH_PATTERN, minLength: 1, description: 'Path an HTTP check GETs, e.g. /ready.' },
    status: { type: 'string', pattern: HEALTH_STATUS_PATTERN, description: 'Accepted statuses: 200 or 200-399.' },
    interval: { anyOf: [{ type: 'string', pattern: DURATION_PATTERN }, { type: 'number', minimum: 0 }], description: 'Time between checks.' },
    timeout: { anyOf: [{ type: 'string', pattern: DURATION_PATTERN }, { type: 'number', minimum: 0 }], description: 'Time a check may take.' },
    rise: { type: 'integer', minimum: 1, maximum: 100, description: 'Consecutive passes that bring the backend back.' },
    fall: { type: 'integer', minimum: 1, maximum: 100, description: 'Consecutive failures that take it out.' },
  },
} as const;

/**
 * A backend file's `tls` block: how its https backends are reached (see docs/backend-tls.md). Relative paths are
 * resolved against the backend file's folder. Replaces the `--backend-tls-*` settings as a whole.
 */
export const TLS_BLOCK_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  description: 'TLS to this https backend; replaces the --backend-tls-* settings as a whole (see docs/backend-tls.md).',
  properties: {
    ca: { type: 'string', minLength: 1, description: 'CA bundle (PEM file) that verifies the backend certificate; default: Node\'s bundled CAs.' },
    serverName: { type: 'string', pattern: '^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?$', description: 'SNI and the name the certificate must carry; default: the URL host.' },
    cert: { type: 'string', minLength: 1, description: 'Client certificate (PEM file) for mutual TLS; needs key.' },
    key: { type: 'string', minLength: 1, description: 'Private key (PEM file, unencrypted) of cert.' },
    insecureSkipVerify: { type: 'boolean', description: 'true: accept any certificate (logged as a warning). For testing only.' },
  },
} as const;

/** Largest accepted `weight`. Large enough for any real ratio, small enough that sums of weights stay exact. */
export const MAX_WEIGHT = 1_000_000;

/** What `id` may look like when given explicitly (a default id is `host:port`, which also matches). */
export const BACKEND_ID_PATTERN = '^[A-Za-z0-9._:-]{1,128}$';

/**
 * JSON Schema (draft-07) of a backend file: one backend object, or an array of them.
 * `if`/`then`/`else` rather than `oneOf`, so a failing document reports only the errors of the shape it has.
 */
export const BACKEND_FILE_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'bulb backend file',
  description: 'One backend object, or an array of backend objects.',
  definitions: {
    backend: {
      type: 'object',
      required: ['url'],
      additionalProperties: false,
      properties: {
        url: {
          type: 'string',
          description: 'An http, https or h2c (cleartext HTTP/2, e.g. gRPC) origin: http://HOST:PORT. No path, query, fragment or credentials.',
        },
        weight: {
          type: 'integer',
          minimum: 1,
          maximum: MAX_WEIGHT,
          default: 1,
          description: 'Relative share for the weighted strategies.',
        },
        id: {
          type: 'string',
          pattern: BACKEND_ID_PATTERN,
          description: 'Stable identity; defaults to HOST:PORT of the url.',
        },
        maxConnections: {
          type: 'integer',
          minimum: 1,
          maximum: MAX_WEIGHT,
          description: 'At most this many requests in flight to this backend; at the limit every strategy skips it.',
        },
        health: HEALTH_BLOCK_SCHEMA,
        tls: TLS_BLOCK_SCHEMA,
        slowStart: {
          anyOf: [
            { type: 'string', pattern: DURATION_PATTERN },
            { type: 'number', minimum: 0 },
          ],
          description: 'Ramp this backend\'s weight up linearly over this time when it is new or recovers (overrides --slow-start).',
        },
      },
    },
  },
  if: { type: 'array' },
  then: { type: 'array', items: { $ref: '#/definitions/backend' } },
  else: { $ref: '#/definitions/backend' },
} as const;
