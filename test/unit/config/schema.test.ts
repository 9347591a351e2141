import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMAND_FLAGS, helpText } from '../../../src/cli/help.js';
import { BUILTIN_STRATEGIES } from '../../../src/config/formats.js';
import { CONFIG_SCHEMA } from '../../../src/config/schema.js';
import { DEFAULTS, ENV_VARS, SETTINGS } from '../../../src/config/settings.js';

const schemaKeys = Object.keys(CONFIG_SCHEMA.properties);

test('the schema refuses unknown keys and describes every property', () => {
  assert.equal(CONFIG_SCHEMA.additionalProperties, false);
  for (const [key, prop] of Object.entries(CONFIG_SCHEMA.properties)) {
    assert.ok(prop.description.length > 20, `${key} has a description`);
  }
});

test('every schema default comes from DEFAULTS, and DEFAULTS has nothing else', () => {
  assert.deepEqual(Object.keys(DEFAULTS).sort(), [...schemaKeys].sort());
  for (const [key, prop] of Object.entries(CONFIG_SCHEMA.properties)) {
    assert.deepEqual(prop.default, DEFAULTS[key as keyof typeof DEFAULTS], key);
  }
});

test('the options table and the schema list the same settings, both ways', () => {
  assert.deepEqual(SETTINGS.map((o) => o.key), schemaKeys);
  assert.equal(new Set(SETTINGS.map((o) => o.flag)).size, SETTINGS.length);
  assert.equal(new Set(SETTINGS.map((o) => o.env)).size, SETTINGS.length);
  for (const o of SETTINGS) {
    const prop = CONFIG_SCHEMA.properties[o.key];
    assert.equal(o.repeatable, 'type' in prop && prop.type === 'array', `${o.key}: repeatable exactly when the setting is a list`);
  }
});

test('ENV_VARS is every setting variable plus BULB_CONFIG', () => {
  assert.deepEqual(ENV_VARS, [...SETTINGS.map((o) => o.env), 'BULB_CONFIG']);
});

test('help mentions every option: flag, placeholder, env var, default, config key and description', () => {
  const help = helpText();
  const flat = help.replace(/\s+/g, ' ');
  for (const o of SETTINGS) {
    assert.ok(help.includes(`${o.flag} ${o.value}`), `${o.flag} ${o.value}`);
    assert.ok(help.includes(o.env), o.env);
    assert.ok(help.includes(`[${o.key}]`), o.key);
    assert.ok(flat.includes(o.help), `description of ${o.key}`);
    const d = DEFAULTS[o.key];
    assert.ok(flat.includes(`Default: ${Array.isArray(d) || d === '' ? 'none' : String(d)}.`), `default of ${o.key}`);
  }
  for (const c of COMMAND_FLAGS) {
    assert.ok(help.includes(c.flag), c.flag);
    if (c.short) assert.ok(help.includes(`${c.short}, ${c.flag}`), c.short);
    if (c.env) assert.ok(help.includes(c.env), c.env);
  }
  for (const name of BUILTIN_STRATEGIES) assert.ok(help.includes(name), name);
});

test('help carries the usage lines and the notes', () => {
  const flat = helpText().replace(/\s+/g, ' ');
  for (const needle of [
    'bulb [flags]',
    'bulb check [flags]',
    '250ms, 2s, 1m',
    'a bare number means seconds',
    "replaces the config file's list; it does not append",
    'top level only (subdirectories are ignored)',
    '*.json, *.yaml and *.yml; dotfiles and editor backups are ignored',
    '{ "url": "http://10.0.0.5:8080", "weight": 3 }',
    'config file < BULB_* environment variables < flags',
  ]) {
    assert.ok(flat.includes(needle), needle);
  }
});

test('help fits in 80 columns', () => {
  for (const line of helpText().split('\n')) assert.ok(line.length <= 80, line);
});
