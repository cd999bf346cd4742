// The Lua scripts that make every state change of a job one atomic step, and each change of an
// upload's owners one step with what it decides (docs/service.md, "Keys and scripts"). Each lives in
// its own file, src/jobs/scripts/<name>-<nkeys>.lua (BullMQ's convention: the number after the dash
// is how many KEYS it takes), read once from next to this module — `npm run build` copies the folder
// to dist/jobs/scripts, as it copies the tfjs wasm file. Every key a script touches is one of its
// KEYS (nothing is built from a prefix inside Lua), so the scripts run unchanged on a Redis Cluster,
// where all of a service's keys share one hash slot.
import { readFileSync, readdirSync } from 'node:fs';
import type { RedisClient } from './redis.js';

/** The scripts as commands on a connection (EVALSHA, falling back to EVAL on NOSCRIPT). */
export interface ScriptCommands {
  lstmCreate(...args: (string | number)[]): Promise<[number, string]>;
  lstmRate(...args: (string | number)[]): Promise<[number, number]>;
  lstmTransition(...args: (string | number)[]): Promise<[number, string]>;
  lstmAppendEpoch(...args: (string | number)[]): Promise<number>;
  lstmAppendLog(...args: (string | number)[]): Promise<number>;
  lstmPutCheckpoint(...args: (string | number | Buffer)[]): Promise<number>;
  lstmDiscardCheckpoint(...args: (string | number)[]): Promise<number>;
  lstmDeleteJob(...args: (string | number)[]): Promise<number>;
  lstmDeleteModel(...args: string[]): Promise<'kept' | 'deleted'>;
  lstmDeleteCorpus(...args: string[]): Promise<'kept' | 'deleted' | 'last'>;
  lstmAddOwner(...args: (string | number)[]): Promise<[number, string] | null>;
}

export type ScriptedRedis = RedisClient & ScriptCommands;

export interface LuaScript {
  /** The file's name without "-<nkeys>.lua", e.g. "transition". */
  name: string;
  numberOfKeys: number;
  lua: string;
}

const DIR = new URL('./scripts/', import.meta.url);

/** Command name on the connection for each script file. */
const COMMANDS: Record<string, keyof ScriptCommands> = {
  create: 'lstmCreate',
  rate: 'lstmRate',
  transition: 'lstmTransition',
  appendEpoch: 'lstmAppendEpoch',
  appendLog: 'lstmAppendLog',
  putCheckpoint: 'lstmPutCheckpoint',
  discardCheckpoint: 'lstmDiscardCheckpoint',
  deleteJob: 'lstmDeleteJob',
  deleteModel: 'lstmDeleteModel',
  deleteCorpus: 'lstmDeleteCorpus',
  addOwner: 'lstmAddOwner',
};

let loaded: LuaScript[] | undefined;

/** Every script of src/jobs/scripts (read once per process). */
export function luaScripts(): LuaScript[] {
  if (loaded) return loaded;
  const scripts: LuaScript[] = [];
  for (const file of readdirSync(DIR).sort()) {
    const m = /^([A-Za-z]+)-(\d+)\.lua$/.exec(file);
    if (!m) continue;
    scripts.push({ name: m[1], numberOfKeys: Number(m[2]), lua: readFileSync(new URL(file, DIR), 'utf8') });
  }
  const missing = Object.keys(COMMANDS).filter((n) => !scripts.some((s) => s.name === n));
  if (missing.length) throw new Error(`Lua scripts missing from ${DIR.pathname}: ${missing.join(', ')}`);
  loaded = scripts;
  return scripts;
}

/** Registers the scripts on a connection (a single Redis or a Cluster); idempotent. */
export function withScripts(redis: RedisClient): ScriptedRedis {
  const r = redis as ScriptedRedis;
  if (typeof r.lstmCreate === 'function') return r;
  for (const s of luaScripts()) {
    const command = COMMANDS[s.name];
    if (command) redis.defineCommand(command, { numberOfKeys: s.numberOfKeys, lua: s.lua });
  }
  return r;
}
