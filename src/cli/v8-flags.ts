/**
 * V8 settings for the bulb process. Imported first by `bin.ts`, so the CLI and the container image get them;
 * embedding `startBulb` in your own process leaves your V8 alone. It trades no measurable requests/s for
 * memory. docs/performance.md has the figures.
 */
import { setFlagsFromString } from 'node:v8';

// A full GC once the old generation has grown 50% past what survived the last one. V8's own factor goes up to 4x
// on a machine with plenty of RAM, so a bulb with 10,000 health-checked backends (each check a socket that V8
// only frees in a full GC) swung between 150 and 250 MB; with this it stays near 130.
setFlagsFromString('--heap-growing-percent=50');
