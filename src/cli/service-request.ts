// One JSON request to a running service's HTTP API for the CLI's resource commands (corpus, model):
// the --url/--api-key options they share, the Authorization header, and every failure as a UserError
// (unreachable server, or the problem the service answered with).
import type { Command } from 'commander';
import { apiKey, baseUrl, problemText, type ClientOptions } from './client-commands.js';
import { UserError } from './errors.js';
import { authHeaders, HttpProblemError } from './sse-client.js';

/** The --url and --api-key options of a command that talks to a running service. */
export function addServiceOptions(c: Command): Command {
  return c
    .option('--url <url>', 'service URL (default: LSTM_TRAINER_URL, else http://HOST:HTTP_PORT)')
    .option('--api-key <key>', 'API key (default: LSTM_TRAINER_API_KEY)');
}

/** The status and JSON body of `path` (body undefined on 204); a non-2xx answer throws a UserError naming the problem. */
export async function serviceRequest<T>(o: ClientOptions, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const url = `${baseUrl(o)}${path}`;
  let res: Response;
  try {
    res = await fetch(url, { ...init, headers: { ...authHeaders(apiKey(o)), ...(init.headers as Record<string, string>) } });
  } catch (e) {
    throw new UserError(`cannot reach ${new URL(url).origin}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  const body = res.status === 204 ? undefined : await res.json().catch(() => undefined);
  if (!res.ok) throw new UserError(problemText(new HttpProblemError(res.status, body)));
  return { status: res.status, body: body as T };
}
