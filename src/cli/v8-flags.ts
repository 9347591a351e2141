/**
 * V8 settings for the bulb process. Imported first by `bin.ts`, so the CLI and the container image get them;
 * embedding `startBulb` in your own process leaves your V8 alone. Each trades no measurable requests/s for
 * memory. README "Performance" has the figures.
 */
import { setFlagsFromString } from 'node:v8';

// A full GC once the old generation has grown 50% past what survived the last one. V8's own factor goes up to 4x
// on a machine with plenty of RAM, so a bulb with 10,000 health-checked backends (each check a socket that V8
// only frees in a full GC) swung between 150 and 250 MB; with this it stays near 130.
setFlagsFromString('--heap-growing-percent=50');

// undici parses responses with llhttp compiled to WebAssembly, and V8 recompiles that parser with its optimizing
// tier after about one response: ~36 MB of compiler memory for a moment, ~10 MB of which the C allocator keeps.
// A larger tiering budget (the most V8 accepts) waits for a few hundred responses first, so a bulb at rest
// does not pay for optimizing code it has hardly run; under load the parser is optimized within a second.
setFlagsFromString('--wasm-tiering-budget=2147483647');
