// Server reflection with descriptors that strict clients accept.
//
// @grpc/reflection serves the FileDescriptorProtos that @grpc/proto-loader builds with protobufjs,
// and protobufjs writes them differently from protoc in three ways that matter to clients that
// validate descriptors (Python's protobuf, grpcurl, Java):
//
//  - a map field's entry message is named after the field (`Statuses`) rather than protoc's
//    `StatusesEntry`; Python's DescriptorPool rejects the file ("map_entry should not be set
//    explicitly"), so the health service could not be resolved at all;
//  - a proto3 `optional` field becomes a one-field oneof `_field` without the `proto3_optional`
//    flag, so clients showed `oneof _num_hiddens { … }` and generated code lost the optional;
//  - files are named after their package (`lstm_trainer_v1.proto`), not their path.
//
// `reflectionDefinition()` re-encodes every file in protoc's shape; startGrpcServer hands it to
// ReflectionService. The reflection services themselves are described as well, so that a
// client listing the services sees every service the server answers.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import type * as Descriptor from 'protobufjs/ext/descriptor/index.js';
import { LOADER_OPTIONS, packageDefinition, PROTO_FILE } from './proto.js';

const require = createRequire(import.meta.url);
const descriptor = require('protobufjs/ext/descriptor') as typeof Descriptor;

/** The path each package's file has in its source tree, as protoc would name it. */
const FILE_NAMES: Record<string, string> = {
  'lstm_trainer.v1': PROTO_FILE,
  'grpc.health.v1': 'grpc/health/v1/health.proto',
  'grpc.reflection.v1': 'grpc/reflection/v1/reflection.proto',
  'grpc.reflection.v1alpha': 'grpc/reflection/v1alpha/reflection.proto',
};

const REFLECTION_PROTOS = ['v1', 'v1alpha'].map((v) =>
  path.join(path.dirname(require.resolve('@grpc/reflection')), `../proto/grpc/reflection/${v}/reflection.proto`),
);

// The decoded shapes this module touches (protobufjs messages with camelCase fields).
interface Field {
  name: string;
  number: number;
  label?: number;
  type?: number;
  typeName?: string;
  oneofIndex?: number;
  jsonName?: string;
  proto3Optional?: boolean;
}
interface Message {
  name: string;
  field: Field[];
  nestedType: Message[];
  oneofDecl: { name: string }[];
  options?: { mapEntry?: boolean };
}
interface File {
  name: string;
  package?: string;
  messageType: Message[];
  dependency: string[];
}

const lowerCamel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const upperCamel = (s: string) => {
  const c = lowerCamel(s);
  return c.charAt(0).toUpperCase() + c.slice(1);
};

/** protoc's shape for one message (and, recursively, its nested messages). */
function fixMessage(m: Message): void {
  // Maps: the entry is `<FieldName>Entry` (protoc's rule: CamelCase of the field name + "Entry").
  for (const nested of m.nestedType) {
    if (!nested.options?.mapEntry) continue;
    const field = m.field.find((f) => f.typeName === nested.name && f.label === 3);
    if (!field) continue;
    const entry = `${upperCamel(field.name)}Entry`;
    if (nested.name !== entry) {
      field.typeName = entry;
      nested.name = entry;
    }
  }
  // proto3 optional: a oneof `_<field>` holding only that field is the synthetic oneof protoc
  // makes for it; flag the field and move synthetic oneofs after the real ones (protoc's order).
  // (decoded messages answer a default 0 for an unset oneofIndex: only an own property is set)
  const inOneof = (f: Field) => Object.hasOwn(f, 'oneofIndex');
  const members = m.oneofDecl.map((_, i) => m.field.filter((f) => inOneof(f) && f.oneofIndex === i));
  const synthetic = m.oneofDecl.map((o, i) => members[i].length === 1 && o.name === `_${members[i][0].name}`);
  const order = [...m.oneofDecl.keys()].sort((a, b) => Number(synthetic[a]) - Number(synthetic[b]) || a - b);
  const newIndex = new Map(order.map((old, i) => [old, i]));
  m.oneofDecl = order.map((i) => m.oneofDecl[i]);
  for (const f of m.field) {
    if (!inOneof(f)) continue;
    if (synthetic[f.oneofIndex!]) f.proto3Optional = true;
    f.oneofIndex = newIndex.get(f.oneofIndex!);
  }
  for (const f of m.field) if (!Object.hasOwn(f, 'jsonName')) f.jsonName = lowerCamel(f.name);
  for (const nested of m.nestedType) fixMessage(nested);
}

/** One FileDescriptorProto (binary) as protoc would have written it. */
export function fixFileDescriptor(bin: Uint8Array): Uint8Array {
  const file = descriptor.FileDescriptorProto.decode(bin) as unknown as File;
  const name = file.package ? FILE_NAMES[file.package] : undefined;
  if (name) file.name = name;
  for (const m of file.messageType) fixMessage(m);
  return descriptor.FileDescriptorProto.encode(file as never).finish();
}

let cached: protoLoader.PackageDefinition | undefined;

/**
 * The definition ReflectionService describes: the service's and health's files, and the
 * reflection services' own, every FileDescriptorProto in protoc's shape.
 */
export function reflectionDefinition(): protoLoader.PackageDefinition {
  if (cached) return cached;
  const reflection = protoLoader.loadSync(REFLECTION_PROTOS, LOADER_OPTIONS);
  const fixed = new Map<string, Buffer>();
  const fix = (bin: Buffer) => {
    const key = bin.toString('base64');
    let out = fixed.get(key);
    if (!out) fixed.set(key, (out = Buffer.from(fixFileDescriptor(bin))));
    return out;
  };
  const out: protoLoader.PackageDefinition = {};
  for (const [name, def] of Object.entries({ ...reflection, ...packageDefinition() })) {
    const files = (def as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos;
    out[name] = (Array.isArray(files) ? { ...def, fileDescriptorProtos: files.map(fix) } : def) as never;
  }
  return (cached = out);
}
