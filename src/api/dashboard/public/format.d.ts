// Types of format.js (the browser module is plain JS; these let TypeScript tests import it).
export function fmtPerplexity(n: unknown): string;
export function fmtRate(n: unknown): string;
export function fmtDuration(ms: unknown): string;
export function fmtTime(iso: string | undefined, now?: Date): string;
export function fmtWhen(iso: string | undefined, now?: Date): string;
export function cleanText(s: string): string;
export function splitSample(prefix: string, text: string): { prefix: string; continuation: string };
export interface FormEntry {
  path: string;
  value: unknown;
  type: 'int' | 'number' | 'string' | 'list';
}
// biome-ignore lint/suspicious/noExplicitAny: a request body built from form fields, read by the callers field by field
export function buildBody(entries: FormEntry[]): Record<string, any>;
// biome-ignore lint/suspicious/noExplicitAny: as buildBody
export function setPath(obj: Record<string, any>, path: string, value: unknown): Record<string, any>;
export function fieldFor(errorField: unknown, known: Set<string>): string | undefined;
export const TERMINAL: Set<string>;
export function stateNotice(label: string, state: string, detail?: unknown): string;
export function logTicks(min: number, max: number, most?: number): number[];
export function describeCorpus(corpus: unknown): string;
export function describeVocab(data: unknown): string;
