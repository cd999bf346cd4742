// A generation request checked as a whole, HTTP and gRPC alike: the shared GenerateRequest schema and
// the prefix as the job's tokenizer reads it (d2l-chars needs a letter A-Z; chars and words anything
// not blank), every offending field named in one answer.
import { cleanPrefix, PrefixError } from '../train/predict.js';
import { SpecError, type SpecIssue } from '../train/spec.js';
import type { TokenizerName } from '../text/tokenizers.js';
import { GenerateRequest, parseMessage } from './schemas.js';
import type { JobService } from '../jobs/types.js';
import type { Caller } from '../jobs/owners.js';

/**
 * The job's tokenizer; a job that cannot be read (unknown, another key's, Redis down): d2l's rule,
 * and the service says why after — so another key's job is refused exactly as a missing one.
 */
export async function tokenizerOf(service: JobService, id: string, as?: Caller): Promise<TokenizerName> {
  return (await service.get(id, { as }).catch(() => undefined))?.spec.data.tokenizer ?? 'd2l-chars';
}

export function parseGenerateRequest(raw: unknown, tokenizer: TokenizerName): { g: GenerateRequest; prefix: string } {
  const issues: SpecIssue[] = [];
  let g: GenerateRequest | undefined;
  try {
    g = parseMessage(GenerateRequest, raw);
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    issues.push(...e.issues);
  }
  let prefix = '';
  const p = (raw as { prefix?: unknown } | null | undefined)?.prefix;
  if (!issues.some((i) => i.field === 'prefix')) {
    try {
      prefix = cleanPrefix(typeof p === 'string' ? p : '', tokenizer);
    } catch (e) {
      if (!(e instanceof PrefixError)) throw e;
      issues.push({ field: 'prefix', message: e.message });
    }
  }
  if (issues.length) throw new SpecError(issues);
  return { g: g!, prefix };
}
