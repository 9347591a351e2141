import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * CPUs this process may use: the CPUs it may run on (`availableParallelism`, which follows the affinity mask),
 * and no more than a container's CPU quota, rounded up (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` over
 * `cpu.cfs_period_us`). A sidecar limited to 500m gets 1, not the host's 64. `root` is for tests.
 */
export function availableCpus(root = '/sys/fs/cgroup'): number {
  const cpus = availableParallelism();
  const quota = cgroupQuota(root);
  return quota === undefined ? cpus : Math.max(1, Math.min(cpus, Math.ceil(quota)));
}

/** The CPU quota in CPUs, or undefined when there is none (or no cgroup file says so). */
export function cgroupQuota(root: string): number | undefined {
  const read = (path: string): string | undefined => {
    try {
      return readFileSync(`${root}/${path}`, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const v2 = read('cpu.max');
  if (v2 !== undefined) {
    const [max, period] = v2.split(/\s+/);
    if (max === 'max' || max === undefined || period === undefined) return undefined;
    const q = Number(max) / Number(period);
    return Number.isFinite(q) && q > 0 ? q : undefined;
  }
  const quota = Number(read('cpu/cpu.cfs_quota_us') ?? read('cpu.cfs_quota_us'));
  const period = Number(read('cpu/cpu.cfs_period_us') ?? read('cpu.cfs_period_us'));
  return quota > 0 && period > 0 ? quota / period : undefined;
}
