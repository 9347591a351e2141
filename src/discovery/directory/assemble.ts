/**
 * The directory source's snapshot, from what one scan found in each file and each file's last-known-good.
 * Pure: no I/O, no clock, no logging; the same input always gives the same output, in the same order.
 *
 * The rules (docs/backend-files.md repeats them):
 * - Per-file last-known-good. A file that parses without problems is its own new last-known-good. A file that
 *   stops being valid (parse or validation error, read error, too large, dangling symlink) keeps its previous
 *   backends and adds its problems. A file that was never valid contributes nothing but its problems.
 * - A file that is gone is not in the input, and so contributes nothing and is forgotten.
 * - Files are taken in code-unit order of their paths, not locale order: the same on every machine. That order
 *   decides duplicates: an id declared by two files belongs to the first, and the other file's entry is ignored
 *   with a problem naming both.
 */
import path from 'node:path';
import type { BackendSpec, SourceProblem } from '../source.js';

/** One file's content as parsed. `pointers[i]` is the JSON pointer of the entry `backends[i]` came from. */
export interface ParsedFile {
  readonly backends: readonly BackendSpec[];
  readonly pointers: readonly string[];
  readonly problems: readonly SourceProblem[];
}

/** A file's backends from the last time it was valid. A valid {@link ParsedFile} is one as it is. */
export interface GoodFile {
  readonly backends: readonly BackendSpec[];
  readonly pointers: readonly string[];
}

/** What a scan found for one file that is there. */
export type FileResult =
  | { readonly kind: 'parsed'; readonly parsed: ParsedFile }
  /** Could not be read (too large, unreadable, a dangling symlink): one problem about the whole file. */
  | { readonly kind: 'failed'; readonly problem: SourceProblem }
  /** Not looked at this time (the directory could not be listed): its last-known-good stands, with no problem. */
  | { readonly kind: 'unseen' };

/** One file's part in the snapshot, in the order of {@link Assembly.files}. */
export interface FileReport {
  readonly file: string;
  /** The file's own problems and its ignored duplicate ids, in that order. */
  readonly problems: readonly SourceProblem[];
  /** Parsed without problems this time (duplicates aside: they are other files' doing). */
  readonly valid: boolean;
  /** Its last-known-good after this scan, if it was ever valid. */
  readonly good: GoodFile | undefined;
}

export interface Assembly {
  /** Every file's last-known-good backends, file by file, without ignored duplicates. */
  readonly backends: BackendSpec[];
  /** Every file's problems, file by file. */
  readonly problems: SourceProblem[];
  /** Last-known-good of each file in the input (and only those): the `lastGood` of the next scan. */
  readonly good: Map<string, GoodFile>;
  readonly files: FileReport[];
}

/** A result for files the scan could not look at; see {@link FileResult}. */
export const UNSEEN: FileResult = Object.freeze({ kind: 'unseen' });

/**
 * @param results what this scan found, per file path; files that are gone are left out.
 * @param lastGood each file's last-known-good from the previous scan (the previous {@link Assembly.good}).
 */
export function assemble(results: ReadonlyMap<string, FileResult>, lastGood: ReadonlyMap<string, GoodFile>): Assembly {
  const files = [...results.keys()].sort(byCodeUnits);
  const backends: BackendSpec[] = [];
  const problems: SourceProblem[] = [];
  const good = new Map<string, GoodFile>();
  const reports: FileReport[] = [];
  const claimedBy = new Map<string, string>(); // id -> file that declared it first
  for (const file of files) {
    // eslint-disable-next-line @typescript-eslint/no-non-null-assertion -- files is results' own keys
    const result = results.get(file)!;
    const valid = result.kind === 'parsed' && result.parsed.problems.length === 0;
    const fileGood = valid ? result.parsed : lastGood.get(file);
    const fileProblems: SourceProblem[] =
      result.kind === 'parsed' ? [...result.parsed.problems] : result.kind === 'failed' ? [result.problem] : [];
    if (fileGood) {
      good.set(file, fileGood);
      fileGood.backends.forEach((spec, i) => {
        const winner = claimedBy.get(spec.id);
        if (winner === undefined) {
          claimedBy.set(spec.id, file);
          backends.push(spec);
          return;
        }
        fileProblems.push(
          Object.freeze({
            file,
            pointer: fileGood.pointers[i] ?? '',
            message: `duplicate id "${spec.id}": ${path.basename(winner)} also declares it and wins (first file by name); this entry is ignored`,
          }),
        );
      });
    }
    reports.push({ file, problems: fileProblems, valid, good: fileGood });
    problems.push(...fileProblems);
  }
  return { backends, problems, good, files: reports };
}

/** Code-unit order, not locale order: the same on every machine. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
