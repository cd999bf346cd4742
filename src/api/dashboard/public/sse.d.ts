// Types of sse.js (plain JS, served to the browser as is; these let TypeScript import it).
export interface SseEvent {
  event: string;
  data: string;
  /** The last event id the stream set (kept until changed), '' before any. */
  id: string;
}

export class SseParser {
  lastEventId: string;
  push(chunk: string): SseEvent[];
}

export function readSse(res: Response, signal?: AbortSignal): AsyncGenerator<SseEvent>;
