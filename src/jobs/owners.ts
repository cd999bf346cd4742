// Owners (docs/service.md, "Owners"): with API keys on, a job belongs to the key that submitted it.
// The record keeps the key's fingerprint (`ownerKey`, never the key) and a name to show
// (`ownerName`: the key's name from API_KEYS=name:KEY, else the fingerprint). A caller sees and acts
// on its own jobs only — anything else answers as a job that does not exist — unless it is an admin
// key (ADMIN_KEYS). With keys off there is no caller and everything is visible, as before.
import { createHash } from 'node:crypto';

/** Who is asking. undefined: API keys are off (every job is visible). */
export interface Caller {
  /** The key's fingerprint (ownerFingerprint). */
  key: string;
  /** What records show as the owner: the key's configured name, else its fingerprint. */
  name: string;
  admin: boolean;
}

/**
 * An API key's owner fingerprint: 16 bytes of its SHA-256, hex (never the key; 128 bits, so two
 * configured keys never share one).
 */
export function ownerFingerprint(key: string): string {
  return `own:${createHash('sha256').update(key, 'utf8').digest().subarray(0, 16).toString('hex')}`;
}

/** Whether `caller` may see a job owned by `ownerKey` (a job without an owner: admins and keys-off only). */
export function canAccess(caller: Caller | undefined, ownerKey: string | undefined | null): boolean {
  return !caller || caller.admin || (ownerKey !== undefined && ownerKey !== null && ownerKey === caller.key);
}

/** One configured key: the key, its name if it has one, and whether it is an admin key. */
export interface KeyEntry {
  key: string;
  name?: string;
  admin: boolean;
}

const NAMED = /^([A-Za-z0-9_.@-]{1,64}):(.+)$/;

/**
 * API_KEYS / ADMIN_KEYS: comma-separated entries, each `KEY` or `name:KEY` (a name is 1–64 of
 * A-Z a-z 0-9 _ . @ -). A key that itself holds a `:` must be given a name (`name:ab:cd`).
 */
export function parseKeyList(value: string | undefined, admin: boolean): KeyEntry[] {
  return (value ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0)
    .map((e) => {
      const m = NAMED.exec(e);
      return m ? { key: m[2], name: m[1], admin } : { key: e, admin };
    });
}

/** The configured keys as callers: a checked token → its Caller. */
export class KeyRing {
  private readonly byKey = new Map<string, Caller>();
  constructor(entries: readonly KeyEntry[]) {
    for (const e of entries) {
      const key = ownerFingerprint(e.key);
      const prev = this.byKey.get(e.key);
      // a key listed in both API_KEYS and ADMIN_KEYS is an admin key
      this.byKey.set(e.key, { key, name: e.name ?? prev?.name ?? key.slice(0, 16), admin: e.admin || (prev?.admin ?? false) });
    }
  }
  /** Every configured key (for the constant-time check). */
  get keys(): string[] {
    return [...this.byKey.keys()];
  }
  /** The caller of a token that passed the key check (undefined for a token that is not configured). */
  callerOf(token: string | undefined): Caller | undefined {
    return token === undefined ? undefined : this.byKey.get(token);
  }
  /** Plain keys (no names, no admins): what callers of the api that pass only `apiKeys` get. */
  static of(keys: readonly string[]): KeyRing {
    return new KeyRing(keys.filter((k) => k.length > 0).map((key) => ({ key, admin: false })));
  }
}
