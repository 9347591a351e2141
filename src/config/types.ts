/** The types the rest of bulb takes from its settings; `Config` is derived from the settings table. */
export type { Address } from './formats.js';
export type { Config, RawConfig, SettingKey } from './settings.js';
