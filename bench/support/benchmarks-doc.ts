import { execSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root above a compiled benchmark (the folder with package.json and nest-cli.json). */
export function repositoryRoot(from: string): string {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'nest-cli.json'))) return dir;
  }
  throw new Error(`repository root not found above ${from}`);
}

/** "commit abc1234", with "(with local changes)" when tracked files differ from it: what the numbers measured. */
export function measuredCommit(root: string): string {
  try {
    const sha = execSync('git rev-parse --short HEAD', { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execSync('git status --porcelain --untracked-files=no', { cwd: root, encoding: 'utf8' }).trim();
    return `commit ${sha}${dirty ? ' (with local changes)' : ''}`;
  } catch {
    return 'an unknown commit';
  }
}

/**
 * Replaces the section `section` starts with (its "## " heading line, up to the next "## ") in
 * docs/benchmarks.md, or appends it. Notes written by hand live under headings of their own.
 */
export function writeBenchmarkSection(root: string, section: string): void {
  const path = join(root, 'docs', 'benchmarks.md');
  const doc = readFileSync(path, 'utf8');
  const heading = `${section.slice(0, section.indexOf('\n'))}\n`;
  if (!heading.startsWith('## ')) throw new Error(`a section starts with its "## " heading: ${heading}`);
  const start = doc.indexOf(heading);
  if (start < 0) {
    writeFileSync(path, `${doc.trimEnd()}\n\n${section}`);
    return;
  }
  const next = doc.indexOf('\n## ', start + heading.length);
  writeFileSync(path, `${doc.slice(0, start)}${section}${next < 0 ? '' : `\n${doc.slice(next + 1)}`}`);
}
