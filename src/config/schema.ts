/**
 * The JSON Schema of bulb's settings, built from the settings table: one property per setting, with its help
 * text as `description` and its default as `default`. It validates the config file and, value by value, the
 * `BULB_*` environment variables and the flags. Data only: the validator bulb runs is generated from it ahead of
 * time (`npm run gen:validators` writes src/generated/validate-config.ts), so this module must not import that
 * validator or anything that does.
 */
import { SETTINGS, type JsonSchema, type SettingKey } from './settings.js';

/** One property of the schema: a setting's schema fragment with its description and default. */
export type SchemaProperty = JsonSchema & { readonly description: string; readonly default: unknown };

/** The config file schema (draft-07, as ajv 8's default class speaks it). */
export const CONFIG_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://bulb.dev/schemas/config.json',
  title: 'bulb configuration',
  description: 'Settings for bulb. Every key is optional; flags and BULB_* environment variables override the file.',
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(
    SETTINGS.map((s): [SettingKey, SchemaProperty] => [s.key, { description: s.help, ...s.schema, default: s.default }]),
  ) as Readonly<Record<SettingKey, SchemaProperty>>,
} as const;
