// Types of labels.js (plain JS, served to the browser as is; these let TypeScript import it: the CLI's tables use it too).
export function uniqueLabels(jobs: { id: string; name?: string }[]): string[];
export function variedPaths(specs: unknown[]): string[];
export function valueAt(obj: unknown, path: string): unknown;
export function valuesLabel(values: Record<string, unknown>): string;
