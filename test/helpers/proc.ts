import { readFileSync } from 'node:fs';

/** Resident memory of a process, in MiB, from /proc (Linux): what the memory and hostile-input tests bound. */
export function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS in /proc/${pid}/status (has the process exited?)`);
  return Number(kb) / 1024;
}
