// Test clients: a real @grpc/grpc-js client generated from the .proto, helpers to await unary
// calls and collect streams, and a client that knows no .proto and learns the API by reflection.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { LOADER_OPTIONS, protoFilePath } from '../../src/api/grpc/index.js';

type Any = any;
export type Client = grpc.Client & Record<string, Any>;

export function trainerClient(port: number): Client {
  const def = protoLoader.loadSync(protoFilePath(), LOADER_OPTIONS);
  const Ctor = (grpc.loadPackageDefinition(def) as Any).lstm_trainer.v1.LstmTrainer as typeof grpc.Client;
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as Client;
}

export function healthClient(port: number): Client {
  const def = protoLoader.loadSync(healthProtoPath, LOADER_OPTIONS);
  const Ctor = (grpc.loadPackageDefinition(def) as Any).grpc.health.v1.Health as typeof grpc.Client;
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as Client;
}

export function bearer(key: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${key}`);
  return md;
}

/** A unary call as a promise; rejects with the ServiceError (code, details, metadata). */
export function call<T = Any>(client: Client, method: string, req: object, md = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => client[method](req, md, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))));
}

/** A unary call's error (fails the test if the call succeeded). */
export async function callError(client: Client, method: string, req: object, md?: grpc.Metadata): Promise<grpc.ServiceError> {
  try {
    const res = await call(client, method, req, md);
    throw new Error(`${method} succeeded: ${JSON.stringify(res)}`);
  } catch (e) {
    if ((e as grpc.ServiceError).code === undefined) throw e;
    return e as grpc.ServiceError;
  }
}

export interface StreamResult<T> {
  messages: T[];
  error?: grpc.ServiceError;
}

/** All messages of a server stream, and its error status if it ended with one. */
export function collect<T = Any>(stream: grpc.ClientReadableStream<T>): Promise<StreamResult<T>> {
  return new Promise((resolve) => {
    const messages: T[] = [];
    let error: grpc.ServiceError | undefined;
    stream.on('data', (m: T) => messages.push(m));
    stream.on('error', (e: grpc.ServiceError) => (error = e));
    stream.on('status', () => setImmediate(() => resolve({ messages, error })));
  });
}

/** Resolves when `pred` holds (polled), or rejects after `ms`. */
export async function until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// ---- a client without the .proto: everything from the reflection service ----

const require = createRequire(import.meta.url);
const reflectionProto = path.join(path.dirname(require.resolve('@grpc/reflection')), '../proto/grpc/reflection/v1/reflection.proto');

export class ReflectionClient {
  private readonly client: Client;

  constructor(
    private readonly port: number,
    private readonly md: grpc.Metadata = new grpc.Metadata(),
  ) {
    const def = protoLoader.loadSync(reflectionProto, { ...LOADER_OPTIONS, defaults: true });
    const Ctor = (grpc.loadPackageDefinition(def) as Any).grpc.reflection.v1.ServerReflection as typeof grpc.Client;
    this.client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as Client;
  }

  /** One request on the bidirectional reflection stream. */
  private ask(req: object): Promise<Any> {
    return new Promise((resolve, reject) => {
      const s = this.client.ServerReflectionInfo(this.md);
      s.on('data', (res: Any) => {
        resolve(res);
        s.end();
      });
      s.on('error', reject);
      s.write(req);
    });
  }

  async listServices(): Promise<string[]> {
    const res = await this.ask({ list_services: '*' });
    if (res.error_response) throw new Error(res.error_response.error_message);
    return res.list_services_response.service.map((s: { name: string }) => s.name);
  }

  /** The serialized FileDescriptorProtos that define `symbol` and its dependencies. */
  async fileDescriptors(symbol: string): Promise<Buffer[]> {
    const res = await this.ask({ file_containing_symbol: symbol });
    if (res.error_response) throw new Error(res.error_response.error_message);
    return res.file_descriptor_response.file_descriptor_proto as Buffer[];
  }

  /** A package definition built from reflection alone (FileDescriptorSet = repeated field 1). */
  async packageDefinition(symbol: string): Promise<protoLoader.PackageDefinition> {
    const files = await this.fileDescriptors(symbol);
    const set = Buffer.concat(files.map((f) => Buffer.concat([Buffer.from([0x0a]), varint(f.length), f])));
    return protoLoader.loadFileDescriptorSetFromBuffer(set, LOADER_OPTIONS);
  }

  /** A client for `service` (full name) that was never given a .proto file. */
  async serviceClient(service: string): Promise<Client> {
    const def = await this.packageDefinition(service);
    const Ctor = grpc.makeGenericClientConstructor(def[service] as grpc.ServiceDefinition, service);
    return new Ctor(`127.0.0.1:${this.port}`, grpc.credentials.createInsecure()) as Client;
  }

  close(): void {
    this.client.close();
  }
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
