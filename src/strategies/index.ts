/**
 * The strategy entry point: importing this module registers every built-in strategy (each file registers
 * itself under its `--strategy` name), and `createStrategy` turns a `--strategy` value into a Strategy.
 */
import './round-robin.js';
import './weighted-round-robin.js';
import './least-connections.js';
import './least-time.js';
import './random.js';
import './power-of-two.js';
import './consistent-hash.js';
import { InvalidStrategyError } from '../errors.js';
import { loadCustomStrategy } from './custom.js';
import { strategyFactory, strategyNames, type Strategy, type StrategyContext } from './strategy.js';

export { loadCustomStrategy } from './custom.js';
export { defaultContext, strategyNames } from './strategy.js';
export type { Candidate, HashKey, PickRequest, Strategy, StrategyContext, StrategyFactory } from './strategy.js';

/** True when a `--strategy` value names a module file rather than a built-in: it ends in .js/.mjs or has a `/`. */
export function isStrategyPath(value: string): boolean {
  return value.endsWith('.js') || value.endsWith('.mjs') || value.includes('/');
}

/**
 * Resolves a `--strategy` value: a module path is loaded with `loadCustomStrategy`, anything else must be a
 * registered built-in name. Rejects with `InvalidStrategyError` for an unknown name or a bad module.
 */
export async function createStrategy(nameOrPath: string, ctx: StrategyContext): Promise<Strategy> {
  if (isStrategyPath(nameOrPath)) return loadCustomStrategy(nameOrPath, ctx);
  const factory = strategyFactory(nameOrPath);
  if (factory === undefined) {
    throw new InvalidStrategyError(
      `unknown strategy "${nameOrPath}": expected one of ${strategyNames().join(', ')}, ` +
        'or a path to a .js/.mjs module',
    );
  }
  return factory(ctx);
}
