import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** A fresh temp directory removed when the test ends. */
export async function tmpDir(t: TestContext, prefix = 'bulb-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a backend file the way editors and config tools do: to a temp name, then renamed over the target. */
export async function writeAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

export function backendFile(url: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ url, ...extra });
}
